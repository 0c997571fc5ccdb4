"""Where evalkit keeps data and caches: XDG directories, EVALKIT_HOME, the old store's move."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evalkit.files.home import StoreLocationWarning, cache_home, data_home, store_file
from evalkit.store import default_store_path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME with no XDG variables and no EVALKIT_HOME/EVALKIT_STORE."""
    for name in ("EVALKIT_HOME", "EVALKIT_STORE", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_defaults_follow_the_xdg_fallbacks(home: Path) -> None:
    assert data_home() == home / ".local" / "share" / "evalkit"
    assert cache_home() == home / ".cache" / "evalkit"
    assert default_store_path() == home / ".local" / "share" / "evalkit" / "evalkit.db"


def test_xdg_variables_are_honoured(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    assert data_home() == home / "data" / "evalkit"
    assert cache_home() == home / "cache" / "evalkit"


def test_relative_xdg_value_is_ignored(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    assert data_home() == home / ".local" / "share" / "evalkit"


def test_evalkit_home_overrides_both(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(home / "one"))
    assert data_home() == cache_home() == home / "one"
    assert default_store_path() == home / "one" / "evalkit.db"


def _make_store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("create table marker (x)")
        db.execute("insert into marker values (42)")
    db.close()


def test_old_store_in_the_cache_is_moved_with_a_warning(home: Path) -> None:
    legacy = home / ".cache" / "evalkit" / "evalkit.db"
    _make_store(legacy)
    with pytest.warns(StoreLocationWarning, match="moved the run store"):
        path = store_file("evalkit.db")
    assert path == home / ".local" / "share" / "evalkit" / "evalkit.db"
    assert not legacy.exists()
    with sqlite3.connect(path) as db:
        assert db.execute("select x from marker").fetchone() == (42,)
    db.close()


def test_old_store_that_looks_open_is_used_in_place(home: Path) -> None:
    legacy = home / ".cache" / "evalkit" / "evalkit.db"
    _make_store(legacy)
    legacy.with_name("evalkit.db-wal").write_bytes(b"")
    with pytest.warns(StoreLocationWarning, match="in place"):
        assert store_file("evalkit.db") == legacy
    assert legacy.exists()


def test_store_already_in_the_data_dir_wins_silently(home: Path, recwarn: pytest.WarningsRecorder) -> None:
    _make_store(home / ".cache" / "evalkit" / "evalkit.db")
    _make_store(home / ".local" / "share" / "evalkit" / "evalkit.db")
    assert store_file("evalkit.db") == home / ".local" / "share" / "evalkit" / "evalkit.db"
    assert not [w for w in recwarn if issubclass(w.category, StoreLocationWarning)]
