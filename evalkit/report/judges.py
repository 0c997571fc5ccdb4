"""Judges: per-criterion scores, calibration status, and the reasoning on the lowest items.

Reads the ``judges`` section (see the cross-area contract: per rubric the judge, mode,
calibration, errors, per-candidate criterion statistics and, in pairwise mode, win
rates) and the per-item ``judge.<rubric>.<criterion>`` scores whose reason is the
judge's reasoning.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.report.failures import cut
from evalkit.report.judge_review import (
    ConsistencyView,
    ReviewedItem,
    consistency_view,
    reviewed_items,
    transcript_counts,
)
from evalkit.results import RunResult

LOWEST_ITEMS = 3
MAX_SHOWN_CHARS = 2000


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters, saying how long it was (see :func:`cut`)."""
    return cut(text, limit)


@dataclass
class JudgedItem:
    """One low-scored item: its scores per criterion and the judge's reasoning."""

    candidate: str
    item_id: str
    mean: float
    scores: list[tuple[str, float, str]]
    prediction: str


@dataclass
class RubricView:
    """One rubric's results."""

    rubric: str
    judge: str
    mode: str
    calibration: str
    calibrated: bool | None
    kappas: list[tuple[str, str]]
    criteria: list[str]
    per_candidate: dict[str, dict[str, str]]
    errors: dict[str, int]
    pairwise: dict[str, dict[str, str]]
    lowest: list[JudgedItem] = field(default_factory=list)
    consistency: ConsistencyView | None = None
    reviewed: list[ReviewedItem] = field(default_factory=list)
    reviewed_counts: tuple[int, int] = (0, 0)


def _calibration(entry: Mapping[str, Any] | None) -> tuple[str, bool | None, list[tuple[str, str]]]:
    if not entry:
        return "not checked against human labels: scores are advisory", None, []
    kappas = [(criterion, f"{float(k):.2f}") for criterion, k in (entry.get("kappa") or {}).items()]
    minimum = entry.get("min_kappa")
    if entry.get("calibrated"):
        return f"calibrated (every criterion's κ ≥ {minimum})" if minimum is not None else "calibrated", True, kappas
    return (f"NOT calibrated (κ below {minimum} on some criterion): its scores do not gate deployment"
            if minimum is not None else "NOT calibrated", False, kappas)


def _criteria_in_items(run: RunResult, rubric: str) -> list[str]:
    prefix = f"judge.{rubric}."
    found: dict[str, None] = {}
    for candidate in run.candidates:
        for item in candidate.items:
            found.update((name[len(prefix):], None) for name in item.scores if name.startswith(prefix))
    return list(found)


def judges_view(run: RunResult) -> list[RubricView]:
    """Return one view per rubric (empty when the run has no judges section)."""
    views = []
    for rubric, entry in (run.sections.get("judges") or {}).items():
        judge = entry.get("judge") or {}
        status, calibrated, kappas = _calibration(entry.get("calibration"))
        per_candidate: dict[str, dict[str, str]] = {}
        criteria: dict[str, None] = {}
        for candidate, stats in (entry.get("per_candidate") or {}).items():
            per_candidate[candidate] = {}
            for criterion, s in stats.items():
                criteria[criterion] = None
                per_candidate[candidate][criterion] = (
                    f"{float(s['mean']):.2f} ± {float(s.get('std', 0.0)):.2f} (n={s.get('n', '?')})")
        pairwise = {
            candidate: {key: f"{float(p[key]) * 100:.0f}%" for key in ("win_rate", "tie_rate", "inconsistent_rate")
                        if key in p}
            for candidate, p in (entry.get("pairwise") or {}).items()
        }
        views.append(RubricView(
            rubric=rubric, judge=f"{judge.get('provider', '?')}: {judge.get('model', '?')}",
            mode=str(entry.get("mode", "pointwise")), calibration=status, calibrated=calibrated,
            kappas=kappas, criteria=list(criteria), per_candidate=per_candidate,
            errors={c: int(n) for c, n in (entry.get("errors") or {}).items() if n},
            pairwise=pairwise, lowest=lowest_items(run, rubric, list(criteria) or _criteria_in_items(run, rubric)),
            consistency=consistency_view(entry.get("consistency")), reviewed=reviewed_items(entry),
            reviewed_counts=transcript_counts(entry),
        ))
    return views


def lowest_items(run: RunResult, rubric: str, criteria: Sequence[str],
                 per_candidate: int = LOWEST_ITEMS) -> list[JudgedItem]:
    """Return each candidate's lowest-scored items on a rubric, with the judge's reasoning.

    Args:
        run: the run.
        rubric: the rubric's name.
        criteria: the rubric's criteria.
        per_candidate: how many items per candidate.
    """
    names = [(criterion, f"judge.{rubric}.{criterion}") for criterion in criteria]
    out = []
    for candidate in run.candidates:
        judged = []
        for position, item in enumerate(candidate.items):
            values = [item.scores[name].value for _, name in names if name in item.scores]
            if values:
                judged.append((sum(values) / len(values), position))
        for mean, position in heapq.nsmallest(per_candidate, judged):
            item = candidate.items[position]
            scores = [(criterion, item.scores[name].value, clip(item.scores[name].reason))
                      for criterion, name in names if name in item.scores]
            out.append(JudgedItem(candidate.name, item.item_id, mean, scores, clip(item.prediction)))
    return out
