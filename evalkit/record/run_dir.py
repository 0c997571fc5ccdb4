"""Read a written run directory (``summary.json`` + ``results.jsonl``) back into a RunResult.

This lets ``evalkit report RUN_DIR`` rebuild a report without the run store. Per-item
benchmark values are not written to a run directory, so they come back empty; the
benchmark and comparison *sections* are in ``summary.json`` and come back whole.

Also in this module:

* Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.files.safe_write import confined_path, json_text, remove_stale_partials, safe_name, staged_directory
from evalkit.files.yaml_source import json_objects
from evalkit.record.results import RunResult, item_line, parse_item_line
from evalkit.record.run_records import SummaryRecord, parse_record


def is_run_dir(path: Path) -> bool:
    """Return True when ``path`` looks like a written run directory."""
    return (path / "summary.json").is_file()


def load_run_dir(path: Path) -> RunResult:
    """Load a run directory written by :func:`evalkit.record.run_dir.write_run`.

    Args:
        path: the run directory.

    Returns:
        The run, with items and scores from ``results.jsonl``.

    Raises:
        DataError: a file is missing or a line of it is malformed (the message names it).
    """
    summary_path = path / "summary.json"
    results_path = path / "results.jsonl"
    if not summary_path.is_file():
        raise DataError(f"{summary_path} not found; pass a run directory written by `evalkit run`")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{summary_path}:{exc.lineno}: not valid JSON ({exc.msg}); "
                        "the run directory is damaged, re-run the suite") from None
    run = RunResult.from_summary(parse_record(SummaryRecord, summary, str(summary_path)), run_dir=path)
    run.run_id = safe_name(run.run_id, f"{summary_path}: run_id")
    by_name = {c.name: c for c in run.candidates}
    if results_path.is_file():
        for number, data in json_objects(results_path, "the run directory is damaged, re-run the suite"):
            where = f"{results_path}:{number}"
            candidate, item = parse_item_line(data, where)
            if candidate not in by_name:
                raise DataError(f"{where}: candidate '{candidate}' is not in {summary_path}; the run "
                                "directory is damaged, re-run the suite")
            by_name[candidate].items.append(item)
    return run


# Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html``.
#
# Files are written into a hidden staging directory that is renamed into place only when
# all of them are complete (:func:`evalkit.files.safe_write.staged_directory`), so a crashed or
# interrupted run never leaves a directory that looks finished; the staging directories a
# killed run left in the suite's folder are removed by the next run written there
# (:func:`evalkit.files.safe_write.remove_stale_partials`). A run never replaces an existing
# directory: an id already taken gets a ``-2``, ``-3`` ... suffix.

def write_run(run: RunResult, output_root: Path, history: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the run's files under ``output_root/<suite>/<run_id>/`` and return that path.

    Args:
        run: the finished run.
        output_root: the root of run directories.
        history: earlier runs' summaries, oldest first, for the report's trend section.

    Raises:
        ConfigError: the suite name or run id would leave ``output_root``.
    """
    from evalkit.report.render import render_report

    suite_dir = confined_path(output_root, run.suite_name, "suite name")
    final = confined_path(suite_dir, run.run_id, f"run id of suite '{run.suite_name}'")
    if run.started_at:
        remove_stale_partials(suite_dir, older_than=run.started_at)
    suffix = 1
    while final.exists() or final.is_symlink():
        suffix += 1
        final = suite_dir / f"{run.run_id}-{suffix}"
    run.run_dir = final
    try:
        with staged_directory(final, kind="run", replace=False) as staging:
            with (staging / "results.jsonl").open("w", encoding="utf-8") as handle:
                for candidate in run.candidates:
                    for item in candidate.items:
                        handle.write(json_text(item_line(item, candidate.name)) + "\n")
            (staging / "summary.json").write_text(json_text(run.summary(), indent=2) + "\n", encoding="utf-8")
            (staging / "report.html").write_text(render_report(run, history=history), encoding="utf-8")
    except BaseException:
        run.run_dir = None
        raise
    return final
