"""Per-field accuracy and a confusion matrix for each enum field of a JSON classifier.

Fields and their labels are read from the expected outputs themselves: a field is an
enum field when every expected value of it is a short string and it takes at most
``MAX_LABELS`` distinct values. A prediction's value outside those labels counts as
``(other)``; a missing field or an unparseable prediction as ``(missing)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalkit.checks.builtin import parse_json_object
from evalkit.record.results import RunResult

MAX_LABELS = 20
OTHER = "(other)"
MISSING = "(missing)"


@dataclass
class ConfusionMatrix:
    """Counts of expected label (rows) against predicted label (columns) for one candidate.

    Attributes:
        field: the JSON field.
        candidate: the candidate.
        labels: the expected labels (row order).
        columns: labels plus ``(other)`` and ``(missing)`` when they occur.
        counts: counts[row][column].
        accuracy: share of items whose predicted label equals the expected one.
    """

    field: str
    candidate: str
    labels: list[str]
    columns: list[str]
    counts: list[list[int]]
    accuracy: float

    def shade(self, row: int, column: int) -> str:
        """Return a CSS background for a cell: green on the diagonal, red off it, by row share."""
        total = sum(self.counts[row]) or 1
        share = self.counts[row][column] / total
        if share == 0:
            return ""
        hue = "46,125,50" if self.columns[column] == self.labels[row] else "198,40,40"
        return f"background: rgba({hue},{0.12 + 0.6 * share:.2f})"


def _as_object(text: str) -> dict[str, Any] | None:
    value, reason = parse_json_object(text)
    return value if not reason and isinstance(value, dict) else None


def enum_fields(run: RunResult) -> dict[str, list[str]]:
    """Return enum field -> its labels (sorted), read from the expected outputs."""
    labels: dict[str, set[str]] = {}
    rejected: set[str] = set()
    seen: set[str] = set()
    for candidate in run.candidates:
        for item in candidate.items:
            if item.item_id in seen:
                continue
            seen.add(item.item_id)
            expected = _as_object(item.expected)
            if expected is None:
                continue
            for name, value in expected.items():
                if not isinstance(value, str) or len(value) > 60:
                    rejected.add(name)
                elif name not in rejected:
                    labels.setdefault(name, set()).add(value)
    return {name: sorted(values) for name, values in labels.items()
            if name not in rejected and 1 < len(values) <= MAX_LABELS}


def confusion_matrices(run: RunResult) -> list[list[ConfusionMatrix]]:
    """Return, per enum field, one confusion matrix per evaluated candidate (suite order)."""
    fields = enum_fields(run)
    if not fields:
        return []
    expected_cache: dict[str, dict[str, Any] | None] = {}

    def expected_object(text: str) -> dict[str, Any] | None:
        # The same reference recurs once per candidate: parse it once.
        if text not in expected_cache:
            expected_cache[text] = _as_object(text)
        return expected_cache[text]

    parsed = {
        candidate.name: [(expected_object(i.expected), _as_object(i.prediction)) for i in candidate.items]
        for candidate in run.candidates if candidate.status == "ok" and candidate.items
    }
    out = []
    for name, labels in fields.items():
        per_candidate = []
        for candidate, pairs in parsed.items():
            grid: dict[tuple[str, str], int] = {}
            right = total = 0
            for expected, got in pairs:
                if expected is None or expected.get(name) not in labels:
                    continue
                value = got.get(name) if got is not None else None
                column = MISSING if value is None else value if value in labels else OTHER
                key = (str(expected[name]), column)
                grid[key] = grid.get(key, 0) + 1
                total += 1
                right += column == expected[name]
            columns = list(labels) + [c for c in (OTHER, MISSING) if any(k[1] == c for k in grid)]
            counts = [[grid.get((row, column), 0) for column in columns] for row in labels]
            per_candidate.append(ConfusionMatrix(name, candidate, list(labels), columns, counts,
                                                 right / total if total else 0.0))
        out.append(per_candidate)
    return out
