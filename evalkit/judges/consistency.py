"""How far a judge agrees with itself: position consistency and self-consistency.

Two audits, one shape of result, one gate:

* **position consistency** (pairwise): every pair is judged in both orders
  (below); the rate is the share of pairs whose two verdicts
  agree. A judge that always prefers position A scores 0, a fair one 1.
* **self-consistency** (pointwise, ``repeats: k``): each output is judged k times, the
  order of the criteria in the prompt rotated on every repeat (and, for a judge
  sampling at a temperature above 0, its sampling varies too); the item's score per
  criterion is the median of the k, and the agreement is the share of items whose k
  scores round to the same integer.

The run's ``judges.<key>.consistency`` entry holds, per criterion (``preference`` for
pairwise), the rate, the suite's ``min_consistency`` and the items that disagreed. A
judge below ``min_consistency`` on a criterion does not gate on it, as an uncalibrated
judge does not (:func:`evalkit.judges.section.consistency_not_counted`, read by the bars). Every repeat is
its own cached judgment: the repeat number is part of the judgment's cache key.

Also in this module:

* Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # Types only: the bars read this module's gate, and must not import the judge clients.
    from evalkit.judges.clients import Judgment
    from evalkit.judges.rubric import Rubric

ConsistencyKind = Literal["position", "self"]
PREFERENCE = "preference"
MAX_LISTED_ITEMS = 50


def rotated_rubric(rubric: Rubric, repeat: int) -> Rubric:
    """Return the rubric with its criteria rotated by ``repeat`` places (repeat 0: itself).

    The prompt lists criteria and the answer's JSON fields in this order, so each repeat
    asks the same question in a different order; scores are read by criterion name.
    """
    shift = repeat % len(rubric.criteria)
    if shift == 0:
        return rubric
    rotated = rubric.model_copy(update={"criteria": rubric.criteria[shift:] + rubric.criteria[:shift]})
    rotated._source = rubric._source
    return rotated


@dataclass
class RepeatedJudgment:
    """One output's k judgments, and their median.

    Attributes:
        judgment: the per-criterion median of the successful repeats (None when all failed).
        repeats: each successful repeat's scores, in repeat order.
        failed: how many repeats failed.
    """

    judgment: Judgment | None
    repeats: list[dict[str, float]] = field(default_factory=list)
    failed: int = 0

    def agrees(self, criterion: str) -> bool | None:
        """Whether every repeat's score on ``criterion`` rounds to one integer (None: fewer than two)."""
        values = [r[criterion] for r in self.repeats if criterion in r]
        if len(values) < 2:
            return None
        return len({round(v) for v in values}) == 1


def median_of(judgments: Sequence[Judgment], criteria: Sequence[str]) -> Judgment | None:
    """Return a judgment whose score per criterion is the median over ``judgments``.

    The reasoning shows every repeat's score and keeps the first repeat's reasoning.
    """
    if not judgments:
        return None
    if len(judgments) == 1:
        return judgments[0]
    scores: dict[str, float] = {}
    shown: list[str] = []
    for criterion in criteria:
        values = [j.scores[criterion] for j in judgments if criterion in j.scores]
        if values:
            scores[criterion] = float(statistics.median(values))
            shown.append(f"{criterion} " + ", ".join(f"{v:g}" for v in values))
    reasoning = f"median of {len(judgments)} judgments ({'; '.join(shown)}); first: {judgments[0].reasoning}"
    return dataclasses.replace(judgments[0], scores=scores, reasoning=reasoning, distributions={})


def combine_repeats(judgments: Sequence[Judgment | None], repeats: int, criteria: Sequence[str]
                    ) -> list[RepeatedJudgment]:
    """Group a flat list (item-major, ``repeats`` per item) into one median per item."""
    grouped = []
    for start in range(0, len(judgments), repeats):
        chunk = judgments[start : start + repeats]
        ok = [j for j in chunk if j is not None]
        grouped.append(RepeatedJudgment(judgment=median_of(ok, criteria), repeats=[dict(j.scores) for j in ok],
                                        failed=len(chunk) - len(ok)))
    return grouped


def _entry(kind: ConsistencyKind, rates: Mapping[str, float | None], n: Mapping[str, int],
           disagreeing: Mapping[str, Sequence[str]], minimum: float | None, extra: Mapping[str, Any]
           ) -> dict[str, Any]:
    below = sorted(c for c, r in rates.items() if minimum is not None and r is not None and r < minimum)
    return {
        "kind": kind, "rate": dict(rates), "n": dict(n), "min_consistency": minimum,
        "consistent": None if minimum is None else not below, "below": below,
        "items": {c: list(ids)[:MAX_LISTED_ITEMS] for c, ids in disagreeing.items() if ids},
        "items_total": {c: len(ids) for c, ids in disagreeing.items() if ids}, **extra,
    }


def position_consistency(verdicts: Mapping[str, Sequence[tuple[str, PairedVerdict]]],
                         minimum: float | None) -> dict[str, Any]:
    """Return the section entry for pairwise position consistency over every candidate.

    Args:
        verdicts: candidate -> (item id, combined verdict) for each judged pair.
        minimum: the suite's ``min_consistency`` (None: report, do not gate).
    """
    pairs = [v for per in verdicts.values() for _, v in per]
    consistent = sum(not v.inconsistent for v in pairs)
    rate = consistent / len(pairs) if pairs else None
    inconsistent = [f"{candidate}:{item_id}" for candidate, per in verdicts.items()
                    for item_id, v in per if v.inconsistent]
    picks = [v.first_position_picks() for v in pairs]
    decided = sum(d for _, d in picks)
    first = sum(a for a, _ in picks) / decided if decided else None
    return _entry("position", {PREFERENCE: rate}, {PREFERENCE: len(pairs)}, {PREFERENCE: inconsistent}, minimum,
                  {"first_position_rate": first})


def self_consistency(repeated: Mapping[str, Sequence[tuple[str, RepeatedJudgment]]], criteria: Sequence[str],
                     repeats: int, minimum: float | None) -> dict[str, Any]:
    """Return the section entry for pointwise self-consistency over every candidate.

    Args:
        repeated: candidate -> (item id, its repeated judgment) for each judged item.
        criteria: the rubric's criteria.
        repeats: k, the judgments per output.
        minimum: the suite's ``min_consistency`` (None: report, do not gate).
    """
    rates: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    disagreeing: dict[str, list[str]] = {}
    spread: dict[str, float | None] = {}
    for criterion in criteria:
        verdicts = [(f"{c}:{item_id}", r.agrees(criterion), r) for c, per in repeated.items() for item_id, r in per]
        measured = [(ident, agrees) for ident, agrees, _ in verdicts if agrees is not None]
        counts[criterion] = len(measured)
        rates[criterion] = sum(a for _, a in measured) / len(measured) if measured else None
        disagreeing[criterion] = [ident for ident, agrees in measured if not agrees]
        stds = [statistics.pstdev([s[criterion] for s in r.repeats if criterion in s])
                for _, agrees, r in verdicts if agrees is not None]
        spread[criterion] = statistics.fmean(stds) if stds else None
    return _entry("self", rates, counts, disagreeing, minimum, {"repeats": repeats, "mean_std": spread})


# Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden.
#
# For each item the judge sees (A = candidate, B = baseline) and then (A = baseline,
# B = candidate). Each verdict maps to the candidate's view: 1 for a candidate win,
# 0.5 for a tie, 0 for a baseline win. The item is *order-consistent* when the two
# mapped verdicts agree; its *preference* is then that value (1 win, 0.5 tie, 0 loss).
# An *order-inconsistent* item, whose verdict depended on where a response stood rather
# than what it said, counts as a tie (0.5) and is listed as such: a judge that always
# prefers position A therefore moves no win rate, and its consistency rate is 0.

_CANDIDATE_FIRST = {"A": 1.0, "B": 0.0, "tie": 0.5}
_BASELINE_FIRST = {"A": 0.0, "B": 1.0, "tie": 0.5}


@dataclass(frozen=True)
class PairedVerdict:
    """One item's two verdicts, seen from the candidate.

    Attributes:
        preference: 1 win, 0.5 tie (or order-inconsistent), 0 loss.
        inconsistent: the two orders disagree.
        candidate_first: the raw verdict (``A``/``B``/``tie``) with the candidate shown as A.
        baseline_first: the raw verdict with the baseline shown as A.
    """

    preference: float
    inconsistent: bool
    candidate_first: str = ""
    baseline_first: str = ""

    def first_position_picks(self) -> tuple[int, int]:
        """Return (verdicts naming A, verdicts naming A or B) over the two orders."""
        raw = (self.candidate_first, self.baseline_first)
        return sum(v == "A" for v in raw), sum(v in ("A", "B") for v in raw)


def combine_orders(candidate_first: str, baseline_first: str) -> PairedVerdict:
    """Combine the verdict with the candidate shown first and the one with it second.

    Args:
        candidate_first: ``A``/``B``/``tie`` when A was the candidate.
        baseline_first: ``A``/``B``/``tie`` when A was the baseline.
    """
    first = _CANDIDATE_FIRST[candidate_first]
    second = _BASELINE_FIRST[baseline_first]
    inconsistent = first != second
    return PairedVerdict(preference=0.5 if inconsistent else first, inconsistent=inconsistent,
                         candidate_first=candidate_first, baseline_first=baseline_first)


def summarise_pairwise(verdicts: Sequence[PairedVerdict]) -> dict[str, Any]:
    """Return a candidate's rates: win, tie, loss, inconsistency, consistency, first position.

    Keys: ``win_rate``, ``tie_rate``, ``loss_rate``, ``inconsistent_rate``, ``consistency``
    (1 - inconsistent_rate), ``first_position_rate`` and ``n``.
    ``tie_rate`` includes the inconsistent items (they count as ties);
    ``first_position_rate`` is the share of non-tie verdicts that named position A
    (0.5 for a judge without position preference), None when every verdict was a tie.
    """
    n = len(verdicts)
    if n == 0:
        return {"win_rate": None, "tie_rate": None, "loss_rate": None, "inconsistent_rate": None,
                "consistency": None, "first_position_rate": None, "n": 0}
    wins = sum(v.preference > 0.5 for v in verdicts)
    ties = sum(v.preference == 0.5 for v in verdicts)
    inconsistent = sum(v.inconsistent for v in verdicts)
    named_a = sum(v.first_position_picks()[0] for v in verdicts)
    decided = sum(v.first_position_picks()[1] for v in verdicts)
    return {
        "win_rate": wins / n,
        "tie_rate": ties / n,
        "loss_rate": (n - wins - ties) / n,
        "inconsistent_rate": inconsistent / n,
        "consistency": 1 - inconsistent / n,
        "first_position_rate": named_a / decided if decided else None,
        "n": n,
    }
