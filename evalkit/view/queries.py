"""The viewer's reads from the run store, each bounded (``LIMIT``/``OFFSET``), and its human labels.

Every read takes an open ``sqlite3.Connection`` inside a read transaction the caller
holds (:meth:`evalkit.store.StoreConnection.read`). Runs are immutable once stored, so a
page never sees half a run.

The paired comparison needs every paired item's scores (only those: no prompt, reference
or output), so :func:`light_run` loads a run with empty texts; the page's items, with
their texts, come one page at a time from :func:`item_page`.

Also here:

* Human labels: the store's ``labels`` table, written by ``evalkit view``, read by ``evalkit labels export``
  (:class:`Label`, :func:`add_label`, :func:`undo_label`, :func:`export_records`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.run_facts import utc_now

PER_PAGE = 50
"""Rows per page (runs, items)."""
CHART_RUNS = 60
"""The newest runs a suite's metric chart shows."""
CHART_METRICS = 4
"""Metrics charted per suite."""

# Shown per item before the rest is cut (a 100 kB output stays one readable cell).
TEXT_LIMIT = 20_000


@dataclass(frozen=True)
class SuiteRow:
    """One suite on the front page: its name, how many runs, the newest run's start."""

    suite: str
    runs: int
    last_started: str


@dataclass(frozen=True)
class RunRow:
    """One run in a suite's list: id, start, candidates and each candidate's metric means."""

    run_id: str
    started_at: str
    baseline: str
    candidates: list[str]
    metrics: dict[str, dict[str, float]]
    has_dir: bool


def suites(conn: sqlite3.Connection) -> list[SuiteRow]:
    """Return every suite with stored runs, by name."""
    return [SuiteRow(*row) for row in conn.execute(
        "SELECT suite, COUNT(*), MAX(started_at) FROM runs GROUP BY suite ORDER BY suite")]


def run_rows(conn: sqlite3.Connection, suite: str, page: int, per_page: int = PER_PAGE) -> tuple[list[RunRow], int]:
    """Return one page of a suite's runs, newest first, and how many runs it has."""
    total = int(conn.execute("SELECT COUNT(*) FROM runs WHERE suite = ?", (suite,)).fetchone()[0])
    rows = conn.execute(
        "SELECT run_id, started_at, baseline, run_dir FROM runs WHERE suite = ?"
        " ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?", (suite, per_page, page * per_page)).fetchall()
    ids = [row[0] for row in rows]
    names: dict[str, list[str]] = {}
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    if ids:
        id_list = json.dumps(ids)
        for run_id, name in conn.execute(
                "SELECT run_id, name FROM candidates WHERE run_id IN (SELECT value FROM json_each(?))"
                " ORDER BY run_id, position", (id_list,)):
            names.setdefault(run_id, []).append(name)
        for run_id, candidate, metric, value in conn.execute(
                "SELECT run_id, candidate, metric, value FROM run_metrics"
                " WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY rowid", (id_list,)):
            metrics.setdefault(run_id, {}).setdefault(candidate, {})[metric] = value
    return [RunRow(run_id, started, baseline, names.get(run_id, []), metrics.get(run_id, {}), bool(run_dir))
            for run_id, started, baseline, run_dir in rows], total


def main_metrics(conn: sqlite3.Connection, suite: str, limit: int = CHART_METRICS) -> list[str]:
    """Return the suite's main metrics: those its newest run's bars name, else its first metrics."""
    row = conn.execute("SELECT run_id, sections_json FROM runs WHERE suite = ? ORDER BY started_at DESC,"
                       " run_id DESC LIMIT 1", (suite,)).fetchone()
    if row is None:
        return []
    bars = json.loads(row[1] or "{}").get("bars") or []
    named = [str(bar["metric"]) for bar in bars if isinstance(bar, dict) and bar.get("metric")]
    measured = [metric for (metric,) in conn.execute(
        "SELECT metric FROM run_metrics WHERE run_id = ? GROUP BY metric ORDER BY MIN(rowid)", (row[0],))]
    chosen = [m for m in dict.fromkeys(named) if m in measured] or measured
    return chosen[:limit]


def metric_trends(conn: sqlite3.Connection, suite: str, metrics: Sequence[str],
                  runs: int = CHART_RUNS) -> tuple[list[str], dict[str, dict[str, list[float | None]]]]:
    """Return the newest ``runs`` run ids (oldest first) and metric -> candidate -> one mean per run."""
    ids = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE suite = ? ORDER BY started_at DESC,"
                                      " run_id DESC LIMIT ?", (suite, runs))][::-1]
    position = {run_id: index for index, run_id in enumerate(ids)}
    series: dict[str, dict[str, list[float | None]]] = {metric: {} for metric in metrics}
    if ids and metrics:
        for run_id, candidate, metric, value in conn.execute(
                "SELECT run_id, candidate, metric, value FROM run_metrics"
                " WHERE run_id IN (SELECT value FROM json_each(?)) AND metric IN (SELECT value FROM json_each(?))",
                (json.dumps(ids), json.dumps(list(metrics)))):
            line = series[metric].setdefault(candidate, [None] * len(ids))
            line[position[run_id]] = value
    return ids, series


def run_header(conn: sqlite3.Connection, run_id: str) -> RunResult | None:
    """Return a run without items (candidates, sections, warnings, run_dir), or None when it is not stored."""
    row = conn.execute(
        "SELECT suite, suite_path, baseline, started_at, finished_at, dataset_hash, evalkit_version, command,"
        " run_dir, sections_json, warnings_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    run = RunResult(run_id=run_id, suite_name=row[0], suite_path=row[1], baseline=row[2], candidates=[],
                    started_at=row[3], finished_at=row[4] or "", dataset_hash=row[5] or "",
                    evalkit_version=row[6] or "", command=row[7] or "", run_dir=Path(row[8]) if row[8] else None,
                    sections=json.loads(row[9] or "{}"), warnings=json.loads(row[10] or "[]"))
    for name, status, message, seconds in conn.execute(
            "SELECT name, status, message, seconds FROM candidates WHERE run_id = ? ORDER BY position", (run_id,)):
        run.candidates.append(CandidateResult(name=name, status=status, message=message, seconds=seconds))
    return run


def run_metric_table(conn: sqlite3.Connection,
                     run_id: str) -> tuple[list[str], dict[str, dict[str, tuple[float, int]]]]:
    """Return a run's metrics (in recorded order) and candidate -> metric -> (mean, items)."""
    table: dict[str, dict[str, tuple[float, int]]] = {}
    order: dict[str, None] = {}
    for candidate, metric, value, n in conn.execute(
            "SELECT candidate, metric, value, n FROM run_metrics WHERE run_id = ? ORDER BY rowid", (run_id,)):
        order[metric] = None
        table.setdefault(candidate, {})[metric] = (value, n)
    return list(order), table


def light_run(conn: sqlite3.Connection, run_id: str, names: Sequence[str]) -> RunResult:
    """Return a run with only the named candidates and their per-item metric values (no texts, no reasons).

    Each item's scores come as the candidate's ``item_values`` (metric -> item id ->
    value, in item order), which :func:`evalkit.comparison.compare.metric_arrays` reads as it reads
    item scores: enough for :func:`evalkit.comparison.compare.compare_runs`, without building an
    object per score (which cost more than reading the rows).

    Raises:
        ConfigError: the run is not stored, or lacks a named candidate.
    """
    run = run_header(conn, run_id)
    if run is None:
        raise ConfigError(f"no run '{run_id}' in the store")
    kept = [c for c in run.candidates if c.name in names]
    missing = [n for n in names if n not in {c.name for c in kept}]
    if missing:
        have = ", ".join(c.name for c in run.candidates)
        raise ConfigError(f"run {run_id} has no candidate '{missing[0]}'; it has: {have}")
    for candidate in kept:
        values = _score_values(conn, run_id, candidate.name)
        for metric, item_id, value in conn.execute(
                "SELECT metric, item_id, value FROM item_values WHERE run_id = ? AND candidate = ? ORDER BY rowid",
                (run_id, candidate.name)):
            values.setdefault(metric, {})[item_id] = value
        candidate.item_values = values
    run.candidates = kept
    return run


def _score_values(conn: sqlite3.Connection, run_id: str, candidate: str) -> dict[str, dict[str, float]]:
    """Return metric -> item id -> value of a candidate's item scores, in item order, without the reasons.

    The item metrics' names are the candidate's stored means less its per-item values
    (``run_metrics`` holds every metric any item has); SQLite then picks just those
    values out of each item's scores (one ``json_extract`` with a path per metric),
    so the reasons, most of the bytes, never reach Python.
    """
    names = [m for (m,) in conn.execute(
        "SELECT metric FROM run_metrics m WHERE run_id = ? AND candidate = ? AND NOT EXISTS (SELECT 1 FROM"
        " item_values v WHERE v.run_id = m.run_id AND v.candidate = m.candidate AND v.metric = m.metric)"
        " ORDER BY rowid", (run_id, candidate))]
    values: dict[str, dict[str, float]] = defaultdict(dict)
    if len(names) < 2 or any('"' in n or "\\" in n for n in names):
        # The general path (a single path would return a bare value, a quote cannot be in one).
        for item_id, scores in conn.execute("SELECT item_id, scores_json FROM item_results WHERE run_id = ?"
                                            " AND candidate = ? ORDER BY position", (run_id, candidate)):
            for metric, (value, _reason) in json.loads(scores).items():
                values[metric][item_id] = value
        return dict(values)
    paths = ", ".join("?" for _ in names)
    rows = conn.execute(f"SELECT item_id, json_extract(scores_json, {paths}) FROM item_results"
                        " WHERE run_id = ? AND candidate = ? ORDER BY position",
                        [*(f'$."{n}"[0]' for n in names), run_id, candidate]).fetchall()
    import numpy as np

    ids = [r[0] for r in rows]
    # One parse for every item (null where an item lacks a metric: a judge scored only some).
    matrix = np.array(json.loads("[" + ",".join([r[1] for r in rows]) + "]"), dtype=np.float64)
    matrix = matrix.reshape(len(ids), len(names))
    found: dict[str, dict[str, float]] = {}
    for index, name in enumerate(names):
        column = matrix[:, index]
        present = ~np.isnan(column)
        if present.all():
            found[name] = dict(zip(ids, column.tolist(), strict=True))
        elif present.any():
            found[name] = dict(zip([ids[i] for i in np.flatnonzero(present)], column[present].tolist(), strict=True))
    return found


@dataclass(frozen=True)
class ItemFilter:
    """Which items a page lists; every field has a URL parameter of the same name.

    Attributes:
        metric: a metric name; with ``failing``, the metric that fails (else any).
        failing: only items whose candidate side scores below 1 (full marks) on ``metric``
            (or on any metric when none is named).
        pattern: an RE2 regular expression matched against ``where``.
        where: ``input`` (the prompt), ``output`` (the outputs) or ``either``.
        slice_field: an item field; with ``slice_value``, only items whose field equals it.
        slice_value: see ``slice_field``.
        only_ids: only these item ids (the flipped items of a comparison), or None.
    """

    metric: str = ""
    failing: bool = False
    pattern: str = ""
    where: str = "either"
    slice_field: str = ""
    slice_value: str = ""
    only_ids: Sequence[str] | None = None


@dataclass
class Side:
    """One candidate's output for an item: the text, and each score with its reason."""

    prediction: str
    scores: dict[str, tuple[float, str]]
    clipped: bool = False


@dataclass
class ItemRow:
    """One listed item: its fields and prompt, the expected answer, and one or two sides."""

    item_id: str
    fields: dict[str, Any]
    prompt: str
    expected: str
    sides: list[Side] = field(default_factory=list)


def _json_path(name: str, what: str) -> str:
    """Return the JSON path of one key (names with dots are quoted); refuse names that cannot be quoted."""
    if '"' in name or "\\" in name:
        raise ConfigError(f"{what} '{name}' cannot be filtered on (it holds a quote or backslash)")
    return f'$."{name}"'


def _side(prediction: str, scores_json: str) -> Side:
    clipped = len(prediction) > TEXT_LIMIT
    scores = {name: (float(value), str(reason)) for name, (value, reason) in json.loads(scores_json).items()}
    return Side(prediction[:TEXT_LIMIT], scores, clipped)


def item_page(conn: sqlite3.Connection, run_id: str, candidate: str, other: tuple[str, str] | None,
              where: ItemFilter, page: int, per_page: int = PER_PAGE) -> tuple[list[ItemRow], int]:
    """Return one page of a candidate's items (paired with ``other``'s by id when given) and the match count.

    ``other`` is ``(run_id, candidate)`` of the second side: only items both sides have are
    listed, in the first side's item order; ``failing`` looks at the second side.

    Raises:
        ConfigError: the pattern is not valid RE2 syntax, or a name cannot be quoted.
    """
    joins = " JOIN item_results b ON b.run_id = ? AND b.candidate = ? AND b.item_id = a.item_id" if other else ""
    params: list[Any] = [*other] if other else []
    clauses = ["a.run_id = ?", "a.candidate = ?"]
    params += [run_id, candidate]
    target = "b" if other else "a"
    if where.failing and where.metric:
        clauses.append(f"json_extract({target}.scores_json, ?) < 1")
        params.append(_json_path(where.metric, "metric") + "[0]")
    elif where.failing:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each({target}.scores_json) s"
                       " WHERE json_extract(s.value, '$[0]') < 1)")
    elif where.metric:
        clauses.append(f"json_extract({target}.scores_json, ?) IS NOT NULL")
        params.append(_json_path(where.metric, "metric"))
    if where.slice_field:
        clauses.append("CAST(json_extract(a.fields_json, ?) AS TEXT) = ?")
        params += [_json_path(where.slice_field, "slice field"), where.slice_value]
    if where.only_ids is not None:
        clauses.append("a.item_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(where.only_ids)))
    if where.pattern:
        _register_pattern(conn, where.pattern)
        outputs = ["a.prediction"] + (["b.prediction"] if other else [])
        texts = {"input": ["a.prompt"], "output": outputs}.get(where.where, ["a.prompt", *outputs])
        clauses.append("(" + " OR ".join(f"evalkit_matches({text})" for text in texts) + ")")
    sql_where = " WHERE " + " AND ".join(clauses)
    # Every matching id in one pass (the filter, a regex above all, runs once; ids are
    # small: one candidate's ids at most), then only the page's texts, by primary key.
    matching = [r[0] for r in conn.execute(f"SELECT a.item_id FROM item_results a{joins}{sql_where}"
                                           " ORDER BY a.position", params)]
    total = len(matching)
    ids = matching[page * per_page:(page + 1) * per_page]
    del matching
    rows = []
    for item_id in ids:
        row = conn.execute("SELECT fields_json, prompt, expected, prediction, scores_json FROM item_results"
                           " WHERE run_id = ? AND candidate = ? AND item_id = ?",
                           (run_id, candidate, item_id)).fetchone()
        item = ItemRow(item_id, json.loads(row[0]), row[1][:TEXT_LIMIT], row[2][:TEXT_LIMIT], [_side(row[3], row[4])])
        if other:
            second = conn.execute("SELECT prediction, scores_json FROM item_results WHERE run_id = ? AND candidate = ?"
                                  " AND item_id = ?", (*other, item_id)).fetchone()
            item.sides.append(_side(second[0], second[1]))
        rows.append(item)
    return rows, total


def _register_pattern(conn: sqlite3.Connection, pattern: str) -> None:
    """Give this connection ``evalkit_matches(text)``: RE2 (linear time, so a pattern cannot hang the server)."""
    from evalkit.checks.registry import compile_linear_regex

    compiled = compile_linear_regex(pattern, "the regex filter")
    conn.create_function("evalkit_matches", 1, lambda text: bool(compiled.search(text or "")), deterministic=True)


def item_metrics(conn: sqlite3.Connection, run_id: str, candidate: str) -> list[str]:
    """Return the metrics of a candidate's items, from its first item (the item metrics' names)."""
    row = conn.execute("SELECT scores_json FROM item_results WHERE run_id = ? AND candidate = ?"
                       " ORDER BY position LIMIT 1", (run_id, candidate)).fetchone()
    return list(json.loads(row[0])) if row else []


def item_fields(conn: sqlite3.Connection, run_id: str, candidate: str) -> list[str]:
    """Return the field names of a candidate's first item (for the slice filter)."""
    row = conn.execute("SELECT fields_json FROM item_results WHERE run_id = ? AND candidate = ?"
                       " ORDER BY position LIMIT 1", (run_id, candidate)).fetchone()
    return [k for k, v in json.loads(row[0]).items() if isinstance(v, str | int | float | bool)] if row else []


# Human labels: the store's ``labels`` table, written by ``evalkit view``, read by ``evalkit labels export``.
#
# A label is one person's judgment of one candidate's output on one item of one run:
#
# * ``pass`` (criterion :data:`PASS`): 1 for pass, 0 for fail;
# * a rubric criterion (``RUBRIC.CRITERION``): a score 1..5 on the rubric's scale.
#
# Labels sit beside the model's results and never change them. Each label is one row
# written in its own transaction (:meth:`evalkit.store.StoreConnection.write`), so two
# people labelling at once lose nothing and a killed server leaves a label whole or
# absent. Undo deletes the row. When a person labels the same thing twice, the later
# label is the one that counts (exports take the newest per item, candidate, run,
# criterion and author).
#
# Exports (:func:`export_records`):
#
# * ``jsonl``: every label, with the item's prompt, reference and output;
# * ``calibration``: the labels file ``evalkit rubric calibrate`` reads
#   (:func:`evalkit.judges.calibration.load_labels`): one line per labelled output whose
#   every criterion of the rubric is scored;
# * ``dpo``: the preference file ``evalkit train --method dpo`` reads
#   (:func:`evalkit.train.lora.preference_records`): for an item, each output labelled pass
#   is ``chosen`` against each different output labelled fail on the same prompt.

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
