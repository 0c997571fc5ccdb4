"""Row mapping: a :class:`~evalkit.record.results.RunResult` into the store's tables and back.

Every function takes an open connection inside a transaction the caller holds (see
:class:`evalkit.store.connection.StoreConnection`); none commits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from evalkit.checks import Score
from evalkit.comparison.result import Comparison
from evalkit.errors import StoreError
from evalkit.files.safe_write import has_surrogates, json_text, without_surrogates
from evalkit.record.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.record.run_records import SummaryRecord, parse_record, summary_json

# One encoder for every row: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def column_json(value: Any) -> str:
    """JSON for a column: lone surrogates (which SQLite's UTF-8 cannot hold) as escapes, losslessly."""
    text = _ENCODER.encode(value)
    return json_text(value) if has_surrogates(text) else text


def column_text(value: str) -> str:
    """Model text for a TEXT column: NUL is kept; a lone surrogate becomes U+FFFD."""
    return without_surrogates(value)


def rename_run(run: RunResult, run_id: str) -> None:
    """Give ``run`` another id, and its comparison section's references to the old one with it."""
    old = run.run_id
    run.run_id = run_id
    comparison: Comparison | None = run.section("comparison")
    if comparison is not None:
        if comparison.baseline_run_id == old:
            comparison.baseline_run_id = run_id
        if comparison.candidate_run_id == old:
            comparison.candidate_run_id = run_id
        run.set_section("comparison", comparison)


def insert_candidates(conn: sqlite3.Connection, run: RunResult) -> None:
    """Insert the run's candidates, their item results and their per-item values."""
    for position, candidate in enumerate(run.candidates):
        identity = candidate.identity
        conn.execute(
            "INSERT INTO candidates (run_id, name, position, status, message, identity_json,"
            " model_fingerprint, adapter_hash, seconds) VALUES (?,?,?,?,?,?,?,?,?)",
            (run.run_id, candidate.name, position, candidate.status, column_text(candidate.message),
             column_json(asdict(identity)) if identity else None,
             identity.model_fingerprint if identity else None, identity.adapter_hash if identity else None,
             candidate.seconds),
        )
        # Rows are generated as SQLite takes them: a million items never sit in memory twice.
        conn.executemany(
            "INSERT INTO item_results (run_id, candidate, position, item_id, fields_json, prompt, expected,"
            " prediction, scores_json) VALUES (?,?,?,?,?,?,?,?,?)",
            ((run.run_id, candidate.name, index, column_text(item.item_id), column_json(item.fields),
              column_text(item.prompt), column_text(item.expected), column_text(item.prediction),
              column_json({n: [s.value, s.reason] for n, s in item.scores.items()}))
             for index, item in enumerate(candidate.items)),
        )
        conn.executemany(
            "INSERT INTO item_values (run_id, candidate, metric, item_id, value) VALUES (?,?,?,?,?)",
            ((run.run_id, candidate.name, metric, column_text(item_id), float(value))
             for metric, values in candidate.item_values.items() for item_id, value in values.items()),
        )


def insert_metrics(conn: sqlite3.Connection, run: RunResult) -> None:
    """Insert (or replace) each candidate's mean per metric, for history and summaries."""
    # Imported here, not at the top, so opening a store (`evalkit history`) loads no numpy;
    # evalkit.comparison.compare does not import the store, so there is no cycle behind this.
    from evalkit.comparison.compare import metric_arrays

    for candidate in run.candidates:
        conn.executemany(
            "INSERT OR REPLACE INTO run_metrics (run_id, candidate, metric, value, n) VALUES (?,?,?,?,?)",
            [(run.run_id, candidate.name, metric, float(array.values.mean()), int(array.values.size))
             for metric, array in metric_arrays(candidate).items() if array.values.size])


def read_summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """Return a stored run's summary (as :meth:`RunResult.summary` makes it) without loading items."""
    row = conn.execute(
        "SELECT suite, suite_path, baseline, started_at, finished_at, dataset_hash, evalkit_version, command,"
        " sections_json, warnings_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    counts = dict(conn.execute(
        "SELECT candidate, COUNT(*) FROM item_results WHERE run_id = ? GROUP BY candidate", (run_id,)).fetchall())
    metrics: dict[str, dict[str, float]] = {}
    for candidate, metric, value in conn.execute(
        "SELECT candidate, metric, value FROM run_metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
    ):
        metrics.setdefault(candidate, {})[metric] = value
    candidates = [
        {"name": name, "status": status, "message": message,
         "identity": json.loads(identity) if identity else None, "items": counts.get(name, 0),
         "seconds": round(seconds, 3), "metrics": metrics.get(name, {})}
        for name, status, message, identity, seconds in conn.execute(
            "SELECT name, status, message, identity_json, seconds FROM candidates WHERE run_id = ?"
            " ORDER BY position", (run_id,))
    ]
    record = parse_record(SummaryRecord, {
        "run_id": run_id, "suite": row[0], "suite_path": row[1], "baseline": row[2], "started_at": row[3],
        "finished_at": row[4] or "", "dataset_hash": row[5] or "", "evalkit_version": row[6] or "",
        "command": row[7] or "", "warnings": json.loads(row[9] or "[]"), "candidates": candidates,
    }, f"run store: run {run_id}")
    return summary_json(record, json.loads(row[8] or "{}"))


def read_run(conn: sqlite3.Connection, run_id: str) -> RunResult:
    """Load a stored run, items and per-item values and all.

    Raises:
        StoreError: no run has this id.
    """
    row = conn.execute(
        "SELECT suite, suite_path, baseline, started_at, finished_at, dataset_hash, evalkit_version, command,"
        " run_dir, sections_json, warnings_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"no run '{run_id}' in the store")
    run = RunResult(
        run_id=run_id, suite_name=row[0], suite_path=row[1], baseline=row[2], candidates=[],
        started_at=row[3], finished_at=row[4] or "", dataset_hash=row[5] or "", evalkit_version=row[6] or "",
        command=row[7] or "", run_dir=Path(row[8]) if row[8] else None,
        sections=json.loads(row[9] or "{}"), warnings=json.loads(row[10] or "[]"),
    )
    for name, status, message, identity, seconds in conn.execute(
        "SELECT name, status, message, identity_json, seconds FROM candidates WHERE run_id = ? ORDER BY position",
        (run_id,),
    ):
        result = CandidateResult(name=name, status=status, message=message, seconds=seconds,
                                 identity=parse_record(CandidateIdentity, json.loads(identity),
                                                       f"run store: run {run_id}: candidate {name}: identity")
                                 if identity else None)
        result.items = list(_read_items(conn, run_id, name))
        for metric, item_id, value in conn.execute(
            "SELECT metric, item_id, value FROM item_values WHERE run_id = ? AND candidate = ? ORDER BY rowid",
            (run_id, name),
        ):
            result.item_values.setdefault(metric, {})[item_id] = value
        run.candidates.append(result)
    return run


def _read_items(conn: sqlite3.Connection, run_id: str, candidate: str) -> Iterator[ItemResult]:
    for item_id, fields, prompt, expected, prediction, scores in conn.execute(
        "SELECT item_id, fields_json, prompt, expected, prediction, scores_json FROM item_results"
        " WHERE run_id = ? AND candidate = ? ORDER BY position", (run_id, candidate),
    ):
        yield ItemResult(
            item_id=item_id, fields=json.loads(fields), prompt=prompt, expected=expected, prediction=prediction,
            scores={name: Score(float(value), reason) for name, (value, reason) in json.loads(scores).items()},
        )
