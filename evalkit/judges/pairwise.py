"""Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden.

For each item the judge sees (A = candidate, B = baseline) and then (A = baseline,
B = candidate). Each verdict maps to the candidate's view: 1 for a candidate win,
0.5 for a tie, 0 for a baseline win. The item is *order-consistent* when the two
mapped verdicts agree; its *preference* is then that value (1 win, 0.5 tie, 0 loss).
An *order-inconsistent* item, whose verdict depended on where a response stood rather
than what it said, counts as a tie (0.5) and is listed as such: a judge that always
prefers position A therefore moves no win rate, and its consistency rate is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
