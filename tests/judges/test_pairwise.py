from __future__ import annotations

import pytest

from evalkit.judges.calibration import combine_orders, summarise_pairwise


@pytest.mark.parametrize("candidate_first, baseline_first, preference, inconsistent", [
    ("A", "B", 1.0, False),   # candidate wins in both orders
    ("B", "A", 0.0, False),   # baseline wins in both orders
    ("A", "A", 0.5, True),    # always prefers the first position: pure position bias
    ("B", "B", 0.5, True),    # always prefers the second position
    ("tie", "tie", 0.5, False),
    ("A", "tie", 0.5, True),  # an order-inconsistent pair counts as a tie
    ("tie", "A", 0.5, True),
])
def test_combining_both_orders(candidate_first: str, baseline_first: str, preference: float,
                               inconsistent: bool) -> None:
    verdict = combine_orders(candidate_first, baseline_first)
    assert (verdict.preference, verdict.inconsistent) == (preference, inconsistent)


def test_summary_rates() -> None:
    verdicts = [combine_orders(*pair) for pair in [("A", "B"), ("A", "B"), ("A", "A"), ("B", "A"), ("A", "tie")]]
    summary = summarise_pairwise(verdicts)
    assert summary == {"win_rate": 0.4, "tie_rate": 0.4, "loss_rate": 0.2, "inconsistent_rate": 0.4,
                       "consistency": 0.6, "first_position_rate": pytest.approx(6 / 9), "n": 5}


def test_empty_summary() -> None:
    assert summarise_pairwise([])["n"] == 0
