"""evalkit never deletes what it did not make, and paths built from stored data stay in their directory.

Sentinel files in a suite's ``output_dir`` survive ``evalkit run``; a crafted run id in a
run directory's ``summary.json`` cannot make ``evalkit report --compare`` write outside
the working directory. (Merge and training targets: tests/train/test_foreign_outputs.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.files.home import MARKER_NAME
from evalkit.record.run_dir import write_run
from evalkit.testing.tiny_model import synthetic_run

SuiteWriter = Any


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_sentinels_in_a_suites_output_dir_survive_a_run(make_suite: SuiteWriter, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "tiny").mkdir(parents=True)
    (reports / "keep.txt").write_text("the user's")
    (reports / "tiny" / "keep.txt").write_text("the user's too")
    before = _snapshot(reports)
    suite = make_suite(items=None)
    assert main(["run", str(suite)]) in (0, 1)
    after = _snapshot(reports)
    assert {name: after[name] for name in before} == before
    run_dirs = [p for p in (reports / "tiny").iterdir() if p.is_dir()]
    assert len(run_dirs) == 1 and (run_dirs[0] / MARKER_NAME).is_file()
    assert not [p for p in (reports / "tiny").iterdir() if p.name.startswith(".")]


def test_a_run_never_replaces_an_existing_run_directory(tmp_path: Path) -> None:
    run = synthetic_run(5, candidates=("base", "lora"), with_comparison=False)
    taken = tmp_path / run.suite_name / run.run_id
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("keep")
    written = write_run(run, tmp_path)
    assert written != taken and written.name.startswith(run.run_id)
    assert (taken / "keep.txt").read_text() == "keep"


def _run_dir(root: Path, run_id: str) -> Path:
    run = synthetic_run(6, candidates=("base", "lora"), with_comparison=False)
    run.run_id = run_id
    return write_run(run, root)


def test_report_compare_refuses_a_crafted_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    before_dir, after_dir = _run_dir(runs, "20261201-100000"), _run_dir(runs, "20261201-110000")
    summary_path = after_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["run_id"] = "x/../../../../name"
    summary_path.write_text(json.dumps(summary))
    cwd = tmp_path / "a" / "b" / "c" / "d" / "e"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    before = _snapshot(tmp_path)
    code = main(["report", "--compare", str(before_dir), str(after_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert "x/../../../../name" in err and "summary.json" in err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before  # nothing written anywhere
    assert list(cwd.iterdir()) == []


def test_report_compare_of_ordinary_run_ids_writes_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    before_dir, after_dir = _run_dir(runs, "20261201-100000"), _run_dir(runs, "20261201-110000")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--compare", str(before_dir), str(after_dir)]) in (0, 1)
    assert (tmp_path / "compare-20261201-100000-vs-20261201-110000.html").is_file()
