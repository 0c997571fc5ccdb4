"""evalkit.files.home: whole-or-nothing writes, and no directory replaced that evalkit did not make."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.errors import ConfigError, OutputExists
from evalkit.files.home import (
    MARKER_NAME,
    check_replaceable,
    confined_path,
    json_text,
    made_by_evalkit,
    safe_name,
    staged_directory,
    without_surrogates,
    write_text,
)


def _hidden_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_new_directory_appears_whole_with_the_marker(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_directory(target, kind="adapter") as staging:
        (staging / "weights.bin").write_bytes(b"w")
        assert not target.exists()  # nothing at the target until the block is done
    assert (target / "weights.bin").read_bytes() == b"w"
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["made_by"] == "evalkit" and marker["kind"] == "adapter"
    assert _hidden_leftovers(tmp_path) == []


def test_an_error_in_the_block_leaves_the_old_directory_and_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_directory(target, kind="adapter") as staging:
        (staging / "v1").write_text("one")
    with pytest.raises(RuntimeError), staged_directory(target, kind="adapter") as staging:
        (staging / "v2").write_text("two")
        raise RuntimeError("training crashed")
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "v1"]
    assert _hidden_leftovers(tmp_path) == []


def test_a_directory_evalkit_made_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged_directory(target, kind="adapter") as staging:
        (staging / "v1").write_text("one")
    with staged_directory(target, kind="adapter") as staging:
        (staging / "v2").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "v2"]
    assert _hidden_leftovers(tmp_path) == []


@pytest.mark.parametrize("manifest", ["evalkit-manifest.json", MARKER_NAME])
def test_a_directory_with_evalkits_manifest_counts_as_made_by_evalkit(tmp_path: Path, manifest: str) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / manifest).write_text("{}")
    assert made_by_evalkit(tmp_path / "old")
    with staged_directory(tmp_path / "old", kind="merged model") as staging:
        (staging / "config.json").write_text("{}")
    assert (tmp_path / "old" / "config.json").is_file()


def test_an_empty_directory_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with staged_directory(tmp_path / "empty", kind="adapter") as staging:
        (staging / "a").write_text("a")
    assert (tmp_path / "empty" / "a").is_file()


def test_a_foreign_directory_is_refused_before_the_block_runs(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    ran = False
    with pytest.raises(OutputExists) as caught, staged_directory(target, kind="adapter"):
        ran = True
    assert not ran
    message = str(caught.value)
    assert str(target) in message and "--force" in message
    assert caught.value.exit_code == 2 and caught.value.directory == target
    assert (target / "thesis.tex").read_text() == "years of work"
    assert _hidden_leftovers(tmp_path) == []


def test_a_foreign_directory_that_appears_during_the_block_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(OutputExists), staged_directory(target, kind="adapter") as staging:
        (staging / "a").write_text("a")
        target.mkdir()
        (target / "sentinel").write_text("keep")
    assert (target / "sentinel").read_text() == "keep"
    assert _hidden_leftovers(tmp_path) == []


def test_a_file_at_the_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OutputExists, match="a file evalkit did not make"):
        check_replaceable(tmp_path / "out")


def test_force_replaces_a_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "old").write_text("old")
    with staged_directory(target, kind="adapter", force=True) as staging:
        (staging / "new").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "new"]


def test_a_symlink_target_is_replaced_without_touching_what_it_points_at(tmp_path: Path) -> None:
    pointed = tmp_path / "elsewhere"
    pointed.mkdir()
    (pointed / MARKER_NAME).write_text("{}")
    (pointed / "keep").write_text("keep")
    os.symlink(pointed, tmp_path / "link")
    with staged_directory(tmp_path / "link", kind="adapter") as staging:
        (staging / "new").write_text("new")
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link" / "new").is_file()
    assert (pointed / "keep").read_text() == "keep"


def test_replace_false_never_replaces_an_existing_directory(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with pytest.raises(OutputExists, match="appeared while"), \
            staged_directory(target, kind="run", replace=False) as staging:
        (staging / "summary.json").write_text("{}")
        with staged_directory(target, kind="run") as other:  # another writer took the name
            (other / "summary.json").write_text('{"other": 1}')
    assert json.loads((target / "summary.json").read_text()) == {"other": 1}


def test_write_text_is_atomic_and_takes_any_text(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "report.html"
    write_text(path, "old")
    write_text(path, "a\ud800b\x00c")  # a lone surrogate cannot be UTF-8: it becomes U+FFFD
    assert path.read_text(encoding="utf-8") == "a\ufffdb\x00c"
    assert _hidden_leftovers(path.parent) == []


def test_json_text_round_trips_surrogates_and_nul_losslessly() -> None:
    value = {"key\udfff": ["\ud800", "\x00", "</script>", "é"]}
    text = json_text(value)
    text.encode("utf-8")  # storable as UTF-8
    assert json.loads(text) == value
    assert "é" in text  # ordinary text stays readable
    assert without_surrogates("x\ud800") == "x\ufffd"


@pytest.mark.parametrize("name", ["x/../../../../name", "../up", "..", ".hidden", "a/b", "a\\b", "", "a b",
                                  "name\x00", "x" * 201, "/abs"])
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run id"):
        safe_name(name, "run id")
    with pytest.raises(ConfigError):
        confined_path(tmp_path, name, "run id")


@pytest.mark.parametrize("name", ["20261201-120000", "20261201-120000-2", "r1", "v1.2_final"])
def test_ordinary_run_ids_pass(name: str, tmp_path: Path) -> None:
    assert confined_path(tmp_path, name, "run id") == tmp_path / name


def test_written_files_and_directories_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "report.html", "x")
        with staged_directory(tmp_path / "run", kind="run") as staging:
            (staging / "summary.json").write_text("{}")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: others may read a report
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755
