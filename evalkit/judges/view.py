"""Judges: per-criterion scores, calibration status, and the reasoning on the lowest items.

Reads the ``judges`` section through its schema
(:data:`evalkit.judges.section.JudgesSection`: per rubric the judge, mode,
calibration, errors, per-candidate criterion statistics and, in pairwise mode, win
rates) and the per-item ``judge.<rubric>.<criterion>`` scores whose reason is the
judge's reasoning.

Also in this module:

* Judges under review: consistency beside kappa, and the exact prompt and raw reply per item.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalkit.judges.section import Calibration, Consistency, CriterionStats, JudgeEntry, JudgesSection, PairwiseRates
from evalkit.record.results import RunResult
from evalkit.report.failures import cut

# Judges under review: consistency beside kappa, and the exact prompt and raw reply per item.
#
# Reads ``judges.<key>.consistency`` (see :mod:`evalkit.judges.calibration`) and
# ``judges.<key>.transcripts`` (see :mod:`evalkit.judges.stage`). Every text
# reaches the page through autoescape, cut to a bound; at most
# :data:`MAX_TRANSCRIPT_ITEMS` items per candidate and rubric are shown (the run's
# ``summary.json`` keeps them all).

MAX_TRANSCRIPT_ITEMS = 40
MAX_EXCHANGE_CHARS = 3000


@dataclass
class ConsistencyView:
    """One judge's self-audit, as a line of text and whether it gates."""

    kind: str
    text: str
    counted: bool


@dataclass
class Exchange:
    """One question to the judge and its reply."""

    label: str
    messages: list[tuple[str, str]]
    reply: str


@dataclass
class ReviewedItem:
    """Everything asked of the judge about one candidate's item."""

    candidate: str
    item_id: str
    exchanges: list[Exchange] = field(default_factory=list)


def consistency_view(entry: Consistency | None) -> ConsistencyView | None:
    """Return the consistency line for a rubric's section entry (None when not measured)."""
    if entry is None:
        return None
    kind = entry.kind
    rates = {c: r for c, r in entry.rate.items() if r is not None}
    minimum = entry.min_consistency
    below = entry.below
    what = "position consistency (both orders agree)" if kind == "position" else (
        f"self-consistency over {entry.repeats if entry.repeats is not None else '?'} repeats (scores agree)")
    shown = ", ".join(f"{c} {r:.2f}" if kind != "position" else f"{r:.2f}" for c, r in rates.items()) or "–"
    text = f"{what}: {shown}"
    if kind == "position" and entry.first_position_rate is not None:
        text += f"; picks position A in {entry.first_position_rate * 100:.0f}% of decided verdicts"
    if minimum is not None:
        text += (f" — below min_consistency {minimum}: its scores do not gate deployment" if below
                 else f" (≥ min_consistency {minimum})")
    totals = entry.items_total
    if totals:
        text += "; inconsistent items: " + ", ".join(f"{c} {n}" for c, n in totals.items())
        if kind == "position":
            text += " (counted as ties)"
    return ConsistencyView(kind=kind, text=text, counted=not below)


def reviewed_items(entry: JudgeEntry, limit: int = MAX_TRANSCRIPT_ITEMS) -> list[ReviewedItem]:
    """Return the judged items of a rubric with their prompts and raw replies, bounded."""
    out: list[ReviewedItem] = []
    for candidate, per_item in entry.transcripts.items():
        for item_id, exchanges in list(per_item.items())[:limit]:
            item = ReviewedItem(candidate=candidate, item_id=item_id)
            for exchange in exchanges:
                messages = [(m.role, cut(m.content, MAX_EXCHANGE_CHARS)) for m in exchange.messages]
                item.exchanges.append(Exchange(label=exchange.label, messages=messages,
                                               reply=cut(exchange.reply, MAX_EXCHANGE_CHARS)))
            out.append(item)
    return out


def transcript_counts(entry: JudgeEntry) -> tuple[int, int]:
    """Return (items shown, items judged) over a rubric's candidates."""
    per_candidate = [len(per_item) for per_item in entry.transcripts.values()]
    return sum(min(n, MAX_TRANSCRIPT_ITEMS) for n in per_candidate), sum(per_candidate)


# Judges: per-criterion scores, calibration status, and the reasoning on the lowest items.

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


def _calibration(entry: Calibration | None) -> tuple[str, bool | None, list[tuple[str, str]]]:
    if entry is None:
        return "not checked against human labels: scores are advisory", None, []
    kappas = [(criterion, f"{k:.2f}") for criterion, k in entry.kappa.items()]
    minimum = entry.min_kappa
    if entry.calibrated:
        return f"calibrated (every criterion's κ ≥ {minimum})" if minimum is not None else "calibrated", True, kappas
    return (f"NOT calibrated (κ below {minimum} on some criterion): its scores do not gate deployment"
            if minimum is not None else "NOT calibrated", False, kappas)


def _stats(s: CriterionStats) -> str:
    return f"{float(s.mean or 0.0):.2f} ± {float(s.std or 0.0):.2f} (n={'?' if s.n is None else s.n})"


def _rates(p: PairwiseRates) -> dict[str, str]:
    shown = {"win_rate": p.win_rate, "tie_rate": p.tie_rate, "inconsistent_rate": p.inconsistent_rate}
    return {key: f"{value * 100:.0f}%" for key, value in shown.items() if value is not None}


def _criteria_in_items(run: RunResult, rubric: str) -> list[str]:
    prefix = f"judge.{rubric}."
    found: dict[str, None] = {}
    for candidate in run.candidates:
        for item in candidate.items:
            found.update((name[len(prefix):], None) for name in item.scores if name.startswith(prefix))
    return list(found)


def judges_view(run: RunResult) -> list[RubricView]:
    """Return one view per rubric (empty when the run has no judges section).

    Raises:
        DataError: the run's judges section does not have its schema's shape.
    """
    section: JudgesSection = run.section("judges") or {}
    views = []
    for rubric, entry in section.items():
        status, calibrated, kappas = _calibration(entry.calibration)
        per_candidate: dict[str, dict[str, str]] = {}
        criteria: dict[str, None] = {}
        for candidate, stats in entry.per_candidate.items():
            criteria.update(dict.fromkeys(stats))
            per_candidate[candidate] = {criterion: _stats(s) for criterion, s in stats.items()}
        judge = entry.judge
        views.append(RubricView(
            rubric=rubric, judge=f"{judge.provider}: {judge.model}" if judge is not None else "?: ?",
            mode=entry.mode, calibration=status, calibrated=calibrated,
            kappas=kappas, criteria=list(criteria), per_candidate=per_candidate,
            errors={c: n for c, n in entry.errors.items() if n},
            pairwise={candidate: _rates(p) for candidate, p in (entry.pairwise or {}).items()},
            lowest=lowest_items(run, rubric, list(criteria) or _criteria_in_items(run, rubric)),
            consistency=consistency_view(entry.consistency), reviewed=reviewed_items(entry),
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
