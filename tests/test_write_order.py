"""Order of writes: a run is in the store only once its directory is complete, and a killed
run's staging directory is removed by the next run in that folder (only evalkit's own).

The kills are real (SIGKILL of a child process running the suite on the mock backend),
sent from inside the step they interrupt, so the point of the kill is exact.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.api import run_suite
from evalkit.files.home import STAGING_MARKER, remove_stale_partials, staged_directory
from evalkit.record.run_facts import utc_now
from evalkit.store import RunStore
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

REPO = Path(__file__).resolve().parents[1]


def write_suite(root: Path) -> Path:
    """A two-candidate mock suite whose run directories go to ``root/reports/dry``."""
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    suite: dict[str, Any] = {
        "name": "dry",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"system": "Classify the ticket as JSON.", "user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [
            {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
            {"name": "lora", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "prompt"}},
        ],
        "checks": ["exact_match", "json_valid"],
        "output_dir": "../reports",
    }
    path = root / "suites" / "dry.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


# Runs the suite in a child that SIGKILLs itself at the named point.
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import evalkit.api, evalkit.report.render
    from evalkit.api import run_suite

    point = sys.argv[3]
    if point == "while-writing":  # the staging directory exists, the report is being rendered
        evalkit.report.render.render_report = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    elif point == "after-writing":  # the directory is in place, the store has not committed
        real = evalkit.api.write_run
        def write_then_die(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        evalkit.api.write_run = write_then_die
    run_suite(sys.argv[1], store=sys.argv[2])
""")


def run_killed(suite: Path, store: Path, point: str) -> None:
    child = subprocess.run([sys.executable, "-c", KILLED_RUN, str(suite), str(store), point], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr


def stored_runs(store: Path) -> list[Any]:
    with RunStore(store) as run_store:
        return run_store.list_runs()


def partials(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".partial")) if folder.is_dir() else []


def test_a_run_killed_while_its_directory_is_written_is_not_in_the_store_and_the_next_run_tidies(
        tmp_path: Path) -> None:
    suite, store = write_suite(tmp_path), tmp_path / "store.db"
    folder = tmp_path / "reports" / "dry"
    run_killed(suite, store, "while-writing")
    assert stored_runs(store) == []  # no run in history without its directory
    left = partials(folder)
    assert len(left) == 1 and (left[0] / STAGING_MARKER).is_file()  # a kill leaves evalkit's staging
    assert [p for p in folder.iterdir() if not p.name.startswith(".")] == []
    # Someone else's hidden folder of the same shape, without evalkit's marker, is not touched.
    foreign = folder / ".notes-1.partial"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")

    run = run_suite(suite, store=store)

    assert partials(folder) == [foreign] and (foreign / "keep.txt").read_text() == "mine"
    [record] = stored_runs(store)
    assert record.run_id == run.run_id and record.run_dir == str(run.run_dir)
    assert json.loads((Path(record.run_dir) / "summary.json").read_text())["run_id"] == run.run_id
    assert not (Path(record.run_dir) / STAGING_MARKER).exists()  # the staging marker does not ship


def test_a_kill_after_the_directory_but_before_the_commit_leaves_a_directory_and_no_stored_run(
        tmp_path: Path) -> None:
    suite, store = write_suite(tmp_path), tmp_path / "store.db"
    run_killed(suite, store, "after-writing")
    assert stored_runs(store) == []
    [written] = [p for p in (tmp_path / "reports" / "dry").iterdir() if not p.name.startswith(".")]
    assert {"summary.json", "results.jsonl", "report.html"} <= {p.name for p in written.iterdir()}


def test_a_full_disk_while_writing_the_directory_stores_nothing_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite, store = write_suite(tmp_path), tmp_path / "store.db"

    def full_disk(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("evalkit.report.render.render_report", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_suite(suite, store=store)
    assert stored_runs(store) == []
    folder = tmp_path / "reports" / "dry"
    assert not folder.exists() or list(folder.iterdir()) == []
    monkeypatch.undo()
    run = run_suite(suite, store=store)  # and the next run is whole, under the same id rules
    assert [r.run_dir for r in stored_runs(store)] == [str(run.run_dir)]


def test_only_stale_unlocked_evalkit_staging_older_than_the_run_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / "dry"
    folder.mkdir()

    def staging(name: str, created_at: str) -> Path:
        path = folder / name
        path.mkdir()
        (path / STAGING_MARKER).write_text(json.dumps({"made_by": "evalkit", "created_at": created_at}))
        return path

    stale = staging(".20260101-000000-abc.partial", "2026-01-01T00:00:00+00:00")
    newer = staging(".20990101-000000-def.partial", "2099-01-01T00:00:00+00:00")
    no_marker = folder / ".20260101-000000-ghi.partial"
    no_marker.mkdir()
    linked = folder / ".20260101-000000-jkl.partial"
    linked.symlink_to(stale)
    now = utc_now()
    # A run being written by another process right now: its marker is locked until it publishes.
    with staged_directory(folder / "20260101-000001", kind="run", replace=False) as live:
        (live / "results.jsonl").write_text("")
        removed = remove_stale_partials(folder, older_than=now)
        assert live.is_dir()
    assert removed == [stale] and not stale.exists()
    assert newer.is_dir() and no_marker.is_dir() and linked.is_symlink()
    assert (folder / "20260101-000001" / "results.jsonl").is_file()
    assert not (folder / "20260101-000001" / STAGING_MARKER).exists()


def test_remove_stale_partials_ignores_a_missing_folder(tmp_path: Path) -> None:
    assert remove_stale_partials(tmp_path / "absent", older_than=utc_now()) == []
    os.makedirs(tmp_path / "empty")
    assert remove_stale_partials(tmp_path / "empty", older_than=utc_now()) == []
