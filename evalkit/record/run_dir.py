"""Read a written run directory (``summary.json`` + ``results.jsonl``) back into a RunResult.

This lets ``evalkit report RUN_DIR`` rebuild a report without the run store. Per-item
benchmark values are not written to a run directory, so they come back empty; the
benchmark and comparison *sections* are in ``summary.json`` and come back whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.errors import DataError
from evalkit.files.input_files import json_objects
from evalkit.files.safe_write import safe_name
from evalkit.record.results import ItemResult, RunResult
from evalkit.record.run_records import ItemRecord, SummaryRecord, parse_record


def is_run_dir(path: Path) -> bool:
    """Return True when ``path`` looks like a written run directory."""
    return (path / "summary.json").is_file()


def load_run_dir(path: Path) -> RunResult:
    """Load a run directory written by :func:`evalkit.record.run_output.write_run`.

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
            record = parse_record(ItemRecord, data, where)
            if record.candidate not in by_name:
                raise DataError(f"{where}: candidate '{record.candidate}' is not in {summary_path}; the run "
                                "directory is damaged, re-run the suite")
            by_name[record.candidate].items.append(ItemResult.from_record(record))
    return run
