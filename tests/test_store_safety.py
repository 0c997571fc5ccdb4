"""The run store against damaged files, read-only mounts and another process's lock.

Everything here is real: the store is the SQLite file a real ``evalkit run`` wrote (the
``mock`` backend answers, so no model loads), the damage is bytes overwritten in its
pages, the read-only store sits on a tmpfs mount remounted read-only, and the lock is
held by a second process's open write transaction.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.errors import StoreError
from evalkit.store import RunStore, StoreConnection
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl


def write_mock_suite(root: Path, store: Path) -> Path:
    """A small suite on the mock backend (it echoes the expected output) storing into ``store``."""
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    suite: dict[str, Any] = {
        "name": "safety",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [{"name": "base", "model": "my-org/not-on-this-machine", "backend": "mock",
                        "options": {"echo": "expected"}}],
        "checks": ["exact_match"],
        "output_dir": "../reports",
        "store": str(store),
    }
    path = root / "suites" / "safety.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def evalkit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh process."""
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path, str]:
    """A suite, the store a real run of it wrote (closed, checkpointed), and the run's id."""
    store = tmp_path / "store" / "evalkit.db"
    suite = write_mock_suite(tmp_path, store)
    done = evalkit("run", str(suite), "--json", str(tmp_path / "run.json"))
    assert done.returncode == 0, done.stderr
    run_id = json.loads((tmp_path / "run.json").read_text())["run_id"]
    return suite, store, run_id


def damage_pages(path: Path) -> None:
    """Overwrite every page after the first with garbage: the header and schema page stay intact."""
    with sqlite3.connect(path) as conn:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    size = path.stat().st_size
    assert size > 2 * page_size  # there are pages to damage
    with open(path, "r+b") as handle:
        handle.seek(page_size)
        handle.write(bytes((n * 37 + 11) % 256 for n in range(size - page_size)))


def assert_one_line_store_error(done: subprocess.CompletedProcess[str], store: Path, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(store) in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_store_with_damaged_pages_is_exit_2_naming_the_file_and_the_recovery(
        stored: tuple[Path, Path, str]) -> None:
    """The run reads the generation cache first: that read met the damage and crashed (exit 3)."""
    suite, store, run_id = stored
    damage_pages(store)
    for done in (evalkit("run", str(suite)), evalkit("history", str(suite)),
                 evalkit("export", run_id, "--store", str(store), "--out", str(store.parent / "x.csv"))):
        assert_one_line_store_error(done, store, "damaged", f"sqlite3 {store} 'PRAGMA integrity_check'",
                                    "move the file")
    assert not (store.parent / "x.csv").exists()


def test_the_generation_cache_read_turns_damage_into_a_store_error(stored: tuple[Path, Path, str]) -> None:
    _, store, _ = stored
    damage_pages(store)
    with pytest.raises(StoreError, match="PRAGMA integrity_check") as caught:
        with RunStore(store) as run_store:
            run_store.cache.get_many(["any-key"])
    assert caught.value.exit_code == 2


def test_a_damaged_judgment_cache_is_a_store_error_saying_how_to_recover(tmp_path: Path) -> None:
    from evalkit.judges.calibration import judgment_cache
    from evalkit.judges.providers import Judgment

    path = tmp_path / "judgments.sqlite"
    with judgment_cache(path) as cache:
        for n in range(400):  # enough rows for several pages
            cache.put(f"key-{n}", Judgment(scores={"format": 4}, reasoning="x" * 200))
    damage_pages(path)
    with pytest.raises(StoreError, match=r"judgment cache is damaged .*PRAGMA integrity_check") as caught:
        with judgment_cache(path) as cache:
            cache.get("key-1")
    assert "--store" not in str(caught.value)


def test_readers_open_the_store_read_only_and_sqlite_refuses_their_writes(stored: tuple[Path, Path, str]) -> None:
    """Root-proof: the tests run as root, where chmod does not stop a write; SQLite's mode=ro does."""
    _, store, run_id = stored
    with RunStore(store, read_only=True) as run_store:
        assert run_store.find_run(run_id).run_id == run_id
        assert run_store.read(lambda conn: conn.execute("PRAGMA query_only").fetchone()[0]) == 1
        with pytest.raises(StoreError, match="read-only"):
            run_store.set_run_dir(run_id, store.parent)
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT run_dir FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0] != str(store.parent)


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Any:
    """A tmpfs mounted at tmp_path/ro; yields a function that remounts it read-only."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the mode=ro test above still runs")

    def remount_read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)

    yield mount_point, remount_read_only
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_readers_work_on_a_store_on_a_read_only_mount(stored: tuple[Path, Path, str], read_only_mount: Any,
                                                     tmp_path: Path) -> None:
    suite, store, run_id = stored
    mount_point, remount_read_only = read_only_mount
    copy = mount_point / "evalkit.db"
    copy.write_bytes(store.read_bytes())
    remount_read_only()
    with pytest.raises(OSError):
        (mount_point / "probe").write_text("x")  # the mount really is read-only, root or not
    history = evalkit("history", str(suite), "--store", str(copy), "--json", "-")
    assert history.returncode == 0, history.stderr
    assert [r["run_id"] for r in json.loads(history.stdout)["runs"]] == [run_id]
    exported = evalkit("export", run_id, "--store", str(copy), "--out", str(tmp_path / "items.jsonl"))
    assert exported.returncode == 0, exported.stderr
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == len(CLASSIFIER_ITEMS)
    compared = evalkit("compare", run_id, run_id, "--store", str(copy))
    assert compared.returncode in (0, 1) and "Traceback" not in compared.stderr, compared.stderr
    report = evalkit("report", run_id, "--store", str(copy), "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "r.html").stat().st_size > 0
    # A writer needs write access: one clear line, exit 2.
    written = evalkit("run", str(suite), "--store", str(copy))
    assert_one_line_store_error(written, copy)
    assert sorted(p.name for p in mount_point.iterdir()) == ["evalkit.db"]


HOLD_THE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _hold_lock(store: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(store), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_lock_held_by_another_process_is_reported_while_waiting(tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """A short notice interval stands in for the 10 s one; the lock is a real second process's."""
    store = tmp_path / "evalkit.db"
    StoreConnection(store).close()
    holder = _hold_lock(store, 1.5)
    try:
        with StoreConnection(store, lock_notice_s=0.3) as connection:
            started = time.monotonic()
            connection.write(lambda conn: conn.execute("PRAGMA user_version"))
            waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    err = capfd.readouterr().err
    notices = [line for line in err.splitlines() if "waiting for another process" in line]
    # Lines came while it waited (on stderr, as notes), and none after it got the lock.
    assert waited >= 0.9
    assert len(notices) >= 2, err
    assert all(line.startswith("note: ") and str(store) in line for line in notices)
    assert len(notices) <= waited / 0.3 + 1


def test_without_a_lock_nothing_is_printed(tmp_path: Path) -> None:
    lines: list[str] = []
    with StoreConnection(tmp_path / "evalkit.db", lock_notice_s=0.01, on_wait=lines.append) as connection:
        connection.write(lambda conn: conn.execute("PRAGMA user_version"))
    assert lines == []


def test_a_reader_upgrades_an_older_store_it_may_write_then_reads_it_read_only(tmp_path: Path) -> None:
    from evalkit.store import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        MIGRATIONS[0](conn)
        conn.execute("PRAGMA user_version = 1")
    with RunStore(path, read_only=True) as store:
        assert store.schema_version == SCHEMA_VERSION and store.list_runs() == []
        assert store.read(lambda conn: conn.execute("PRAGMA query_only").fetchone()[0]) == 1


def test_read_only_open_of_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "absent.db", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_the_default_busy_wait_returns_to_python_within_the_notice_interval(tmp_path: Path) -> None:
    with StoreConnection(tmp_path / "evalkit.db") as connection:
        busy_ms = connection.read(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0])
    assert busy_ms <= 10_000  # SQLite's own wait is no longer than one notice interval
