"""Read a written run directory (``summary.json`` + ``results.jsonl``) back into a RunResult.

This lets ``evalkit report RUN_DIR`` rebuild a report without the run store. Per-item
benchmark values are not written to a run directory, so they come back empty; the
benchmark and comparison *sections* are in ``summary.json`` and come back whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.checks import Score
from evalkit.errors import DataError
from evalkit.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.safe_write import safe_name


def is_run_dir(path: Path) -> bool:
    """Return True when ``path`` looks like a written run directory."""
    return (path / "summary.json").is_file()


def _identity(raw: Any, where: str) -> CandidateIdentity | None:
    if raw is None:
        return None
    try:
        return CandidateIdentity(**raw)
    except TypeError as exc:
        raise DataError(f"{where}: identity does not match this evalkit version ({exc}); "
                        "rebuild the report with the evalkit version that wrote the run") from None


def load_run_dir(path: Path) -> RunResult:
    """Load a run directory written by :func:`evalkit.run_output.write_run`.

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
    try:
        candidates = [
            CandidateResult(
                name=c["name"], status=c.get("status", "ok"), message=c.get("message", ""),
                identity=_identity(c.get("identity"), f"{summary_path}: candidate {c['name']}"),
                seconds=float(c.get("seconds", 0.0)),
            )
            for c in summary["candidates"]
        ]
        run = RunResult(
            run_id=safe_name(summary["run_id"], f"{summary_path}: run_id"), suite_name=summary["suite"],
            suite_path=summary.get("suite_path", ""),
            baseline=summary["baseline"], candidates=candidates, started_at=summary.get("started_at", ""),
            finished_at=summary.get("finished_at", ""), dataset_hash=summary.get("dataset_hash", ""),
            evalkit_version=summary.get("evalkit_version", ""), command=summary.get("command", ""),
            run_dir=path, sections=dict(summary.get("sections") or {}),
            warnings=list(summary.get("warnings") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{summary_path}: missing or malformed field {exc}; "
                        "the run directory is damaged, re-run the suite") from None
    by_name = {c.name: c for c in candidates}
    if results_path.is_file():
        with results_path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{results_path}:{number}"
                try:
                    record = json.loads(line)
                    candidate = by_name[record["candidate"]]
                    candidate.items.append(ItemResult(
                        item_id=str(record["item_id"]), fields=record.get("input") or {},
                        prompt=record.get("prompt", ""), expected=record["expected"],
                        prediction=record["prediction"],
                        scores={name: Score(float(s["value"]), s.get("reason", ""))
                                for name, s in (record.get("scores") or {}).items()},
                    ))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg}); the run directory is damaged, "
                                    "re-run the suite") from None
                except KeyError as exc:
                    raise DataError(f"{where}: missing field {exc} or unknown candidate; the run directory "
                                    "is damaged, re-run the suite") from None
                except (TypeError, ValueError) as exc:
                    raise DataError(f"{where}: malformed score ({exc}); re-run the suite") from None
    return run
