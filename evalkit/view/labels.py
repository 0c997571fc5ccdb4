"""Human labels: the store's ``labels`` table, written by ``evalkit view``, read by ``evalkit labels export``.

A label is one person's judgment of one candidate's output on one item of one run:

* ``pass`` (criterion :data:`PASS`): 1 for pass, 0 for fail;
* a rubric criterion (``RUBRIC.CRITERION``): a score 1..5 on the rubric's scale.

Labels sit beside the model's results and never change them. Each label is one row
written in its own transaction (:meth:`evalkit.store.StoreConnection.write`), so two
people labelling at once lose nothing and a killed server leaves a label whole or
absent. Undo deletes the row. When a person labels the same thing twice, the later
label is the one that counts (exports take the newest per item, candidate, run,
criterion and author).

Exports (:func:`export_records`):

* ``jsonl``: every label, with the item's prompt, reference and output;
* ``calibration``: the labels file ``evalkit rubric calibrate`` reads
  (:func:`evalkit.judges.calibration.load_labels`): one line per labelled output whose
  every criterion of the rubric is scored;
* ``dpo``: the preference file ``evalkit train --method dpo`` reads
  (:func:`evalkit.train.lora.preference_records`): for an item, each output labelled pass
  is ``chosen`` against each different output labelled fail on the same prompt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError
from evalkit.record.environment import utc_now

if TYPE_CHECKING:
    from evalkit.judges.rubric import Rubric

PASS = "pass"
"""The criterion of a pass/fail label."""
SCALE = (1, 2, 3, 4, 5)
"""The values a rubric criterion label takes (the judges' scale)."""
FORMATS = ("calibration", "dpo", "jsonl")
"""The export formats."""
MAX_NAME = 200  # longest id, candidate, criterion or author a label accepts


@dataclass(frozen=True)
class Label:
    """One stored label (see the module docstring)."""

    label_id: int
    run_id: str
    candidate: str
    item_id: str
    criterion: str
    value: float
    author: str
    created_at: str


def check_label(criterion: str, value: object) -> float:
    """Return the label's value as stored, or raise when it is not one the criterion takes.

    Raises:
        ConfigError: a pass/fail label that is not 0 or 1, a criterion label not in 1..5,
            or a criterion name that is not ``pass`` or ``RUBRIC.CRITERION``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"label value must be a number, got {value!r}")
    if criterion == PASS:
        if value not in (0, 1):
            raise ConfigError(f"a pass/fail label is 1 (pass) or 0 (fail), got {value!r}")
    elif "." in criterion.strip(".") and len(criterion) <= MAX_NAME:
        if value not in SCALE:
            raise ConfigError(f"a rubric criterion label is an integer 1..5, got {value!r}")
    else:
        raise ConfigError(f"criterion '{criterion}' is neither '{PASS}' nor RUBRIC.CRITERION")
    return float(value)


def add_label(conn: sqlite3.Connection, run_id: str, candidate: str, item_id: str, criterion: str,
              value: object, author: str) -> Label:
    """Insert one label for an item that is stored (call inside one write transaction).

    Raises:
        ConfigError: the run has no such candidate item, or the label is not valid.
    """
    stored = check_label(criterion, value)
    for name, text in (("author", author), ("run_id", run_id), ("candidate", candidate), ("item_id", item_id)):
        if not text or len(text) > MAX_NAME * 10:
            raise ConfigError(f"label {name} must be 1..{MAX_NAME * 10} characters")
    if conn.execute("SELECT 1 FROM item_results WHERE run_id = ? AND candidate = ? AND item_id = ?",
                    (run_id, candidate, item_id)).fetchone() is None:
        raise ConfigError(f"run {run_id} has no item '{item_id}' of candidate '{candidate}'")
    created = utc_now()
    cursor = conn.execute(
        "INSERT INTO labels (run_id, candidate, item_id, criterion, value, author, created_at)"
        " VALUES (?,?,?,?,?,?,?)", (run_id, candidate, item_id, criterion, stored, author, created))
    return Label(int(cursor.lastrowid or 0), run_id, candidate, item_id, criterion, stored, author, created)


def undo_label(conn: sqlite3.Connection, label_id: int, author: str) -> bool:
    """Delete one of ``author``'s labels (inside a write transaction); return False when there was none."""
    cursor = conn.execute("DELETE FROM labels WHERE label_id = ? AND author = ?", (label_id, author))
    return cursor.rowcount > 0


def labels_for(conn: sqlite3.Connection, run_id: str, candidate: str,
               item_ids: Sequence[str]) -> dict[str, list[Label]]:
    """Return item id -> the labels of those items of one candidate, oldest first."""
    found: dict[str, list[Label]] = {}
    for row in conn.execute(
            "SELECT label_id, run_id, candidate, item_id, criterion, value, author, created_at FROM labels"
            " WHERE run_id = ? AND candidate = ? AND item_id IN (SELECT value FROM json_each(?)) ORDER BY label_id",
            (run_id, candidate, json.dumps(list(item_ids)))):
        found.setdefault(row[3], []).append(Label(*row))
    return found


def count_labels(conn: sqlite3.Connection) -> int:
    """Return how many labels are stored."""
    return int(conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0])


_LATEST = """
SELECT l.label_id, l.run_id, l.candidate, l.item_id, l.criterion, l.value, l.author, l.created_at,
       i.fields_json, i.prompt, i.expected, i.prediction
FROM labels l JOIN item_results i ON i.run_id = l.run_id AND i.candidate = l.candidate AND i.item_id = l.item_id
WHERE l.label_id IN (SELECT MAX(label_id) FROM labels GROUP BY run_id, candidate, item_id, criterion, author)
ORDER BY l.label_id
"""


def export_records(conn: sqlite3.Connection, fmt: str, rubric: Rubric | None = None) -> list[dict[str, Any]]:
    """Return the export's JSONL records in format ``fmt`` (see the module docstring).

    Raises:
        ConfigError: an unknown format, or ``calibration`` without a rubric.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown labels format '{fmt}'; use one of: {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return [_raw_record(row) for row in conn.execute(
            "SELECT l.label_id, l.run_id, l.candidate, l.item_id, l.criterion, l.value, l.author, l.created_at,"
            " i.fields_json, i.prompt, i.expected, i.prediction FROM labels l JOIN item_results i"
            " ON i.run_id = l.run_id AND i.candidate = l.candidate AND i.item_id = l.item_id ORDER BY l.label_id")]
    rows = conn.execute(_LATEST).fetchall()
    if fmt == "calibration":
        if rubric is None:
            raise ConfigError("--format calibration needs --rubric FILE (the rubric whose criteria were scored)")
        return _calibration(rows, rubric)
    return _preferences(rows)


def _raw_record(row: tuple[Any, ...]) -> dict[str, Any]:
    label = Label(*row[:8])
    return {"label_id": label.label_id, "run_id": label.run_id, "candidate": label.candidate,
            "item_id": label.item_id, "criterion": label.criterion, "value": label.value, "author": label.author,
            "created_at": label.created_at, "item": json.loads(row[8]), "prompt": row[9], "reference": row[10],
            "prediction": row[11]}


def _calibration(rows: list[tuple[Any, ...]], rubric: Rubric) -> list[dict[str, Any]]:
    """One labels-file line per output and author whose every rubric criterion is scored."""
    prefix = f"{rubric.name}."
    grouped: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        label = Label(*row[:8])
        if not label.criterion.startswith(prefix):
            continue
        key = (label.run_id, label.candidate, label.item_id, label.author)
        line = grouped.setdefault(key, {
            "id": f"{label.run_id}/{label.candidate}/{label.item_id}/{label.author}",
            "item": json.loads(row[8]), "prediction": row[11], "reference": row[10], "scores": {}})
        line["scores"][label.criterion[len(prefix):]] = int(label.value)
    wanted = set(rubric.criterion_names)
    return [{**line, "scores": {n: line["scores"][n] for n in rubric.criterion_names}}
            for line in grouped.values() if wanted <= set(line["scores"])]


def _preferences(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Pairs of outputs on one item and prompt: one labelled pass (chosen), one labelled fail (rejected)."""
    by_item: dict[tuple[str, str], dict[str, set[str]]] = {}
    for row in rows:
        label = Label(*row[:8])
        if label.criterion != PASS:
            continue
        sides = by_item.setdefault((label.item_id, row[9]), {"pass": set(), "fail": set()})
        sides["pass" if label.value >= 1 else "fail"].add(row[11])
    records = []
    for (_item_id, prompt), sides in by_item.items():
        for chosen in sorted(sides["pass"]):
            for rejected in sorted(sides["fail"] - sides["pass"]):
                if chosen.strip() and rejected.strip():
                    records.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return records
