"""Pairwise verdicts in both orders, so a judge's position bias cancels out.

For each item the judge sees (A = candidate, B = baseline) and then (A = baseline,
B = candidate). Each verdict maps to the candidate's view: 1 for a candidate win,
0.5 for a tie, 0 for a baseline win. The item's *preference* is the mean of the two
(0, 0.25, 0.5, 0.75 or 1): above 0.5 is a win, 0.5 a tie, below a loss. The item is
*order-inconsistent* when the two mapped verdicts differ, which is how often the
judge's verdict depended on where a response stood rather than what it said.
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
        preference: mean of the two orders' values: 1 win, 0.5 tie, 0 loss.
        inconsistent: the two orders disagree.
    """

    preference: float
    inconsistent: bool


def combine_orders(candidate_first: str, baseline_first: str) -> PairedVerdict:
    """Combine the verdict with the candidate shown first and the one with it second.

    Args:
        candidate_first: ``A``/``B``/``tie`` when A was the candidate.
        baseline_first: ``A``/``B``/``tie`` when A was the baseline.
    """
    first = _CANDIDATE_FIRST[candidate_first]
    second = _BASELINE_FIRST[baseline_first]
    return PairedVerdict(preference=(first + second) / 2, inconsistent=first != second)


def summarise_pairwise(verdicts: Sequence[PairedVerdict]) -> dict[str, Any]:
    """Return ``{"win_rate", "tie_rate", "loss_rate", "inconsistent_rate", "n"}`` for a candidate."""
    n = len(verdicts)
    if n == 0:
        return {"win_rate": None, "tie_rate": None, "loss_rate": None, "inconsistent_rate": None, "n": 0}
    wins = sum(v.preference > 0.5 for v in verdicts)
    ties = sum(v.preference == 0.5 for v in verdicts)
    return {
        "win_rate": wins / n,
        "tie_rate": ties / n,
        "loss_rate": (n - wins - ties) / n,
        "inconsistent_rate": sum(v.inconsistent for v in verdicts) / n,
        "n": n,
    }
