"""Intervals that agree with the verdict at small n (issue 28, item 4).

Every paired pass/fail table of up to 14 items is compared, exhaustively: the interval
shown beside the comparison is the one the gate decides with (Tango's score interval),
it never collapses to a point, the McNemar p-value never disagrees with it, and the
verdict is what the interval says about the allowed drop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as statsmodels_mcnemar

from evalkit.comparison.paired import compare_metric, paired_proportion_interval
from evalkit.comparison.result import TOLERANCE, Threshold

Z2 = 1.959964**2


def _tables(max_items: int):
    """Every paired table (both pass, lost, gained, both fail) with 1..max_items items."""
    for n in range(1, max_items + 1):
        for both_pass in range(n + 1):
            for lost in range(n - both_pass + 1):
                for gained in range(n - both_pass - lost + 1):
                    yield both_pass, lost, gained, n - both_pass - lost - gained


def _arrays(both_pass: int, lost: int, gained: int, both_fail: int) -> tuple[np.ndarray, np.ndarray]:
    baseline = np.array([1.0] * both_pass + [1.0] * lost + [0.0] * gained + [0.0] * both_fail)
    candidate = np.array([1.0] * both_pass + [0.0] * lost + [1.0] * gained + [0.0] * both_fail)
    return baseline, candidate


@pytest.mark.parametrize("threshold", ["3%", "0%", "10pt"])
def test_every_small_table_gets_an_interval_that_agrees_with_its_verdict(threshold: str) -> None:
    checked = 0
    for table in _tables(14):
        baseline, candidate = _arrays(*table)
        ids = [str(i) for i in range(baseline.size)]
        compared = compare_metric("exact_match", ids, baseline, candidate, threshold, np.random.default_rng(0),
                                  kind="binary")
        allowed = Threshold.parse(threshold).allowed_drop(compared.baseline_value)
        low, high = compared.ci_low, compared.ci_high
        # Never a point: even n identical pairs leave +-z^2/(n + z^2).
        assert high - low >= 2 * Z2 / (baseline.size + Z2) - 1e-9 or high - low > 0.05, table
        assert low <= compared.delta <= high, table
        # The test and the interval never disagree (the test is the score test the interval inverts).
        assert (compared.p_value < 0.05) == (low > 0.0 or high < 0.0), table
        # The verdict is what the interval says about the allowed drop.
        if compared.verdict == "regressed":
            assert high < -allowed + TOLERANCE, table
        elif compared.verdict == "no_change":
            assert low >= -allowed - TOLERANCE, table
        elif compared.verdict == "inconclusive":
            assert low < -allowed - TOLERANCE <= high + 2 * TOLERANCE, table
            if compared.items_needed is None:
                # Only where nothing is tolerated and nothing dropped: no set size decides it.
                assert allowed <= TOLERANCE and compared.delta >= 0.0 and "none can" in compared.explain(), table
            else:
                assert compared.items_needed > baseline.size, table
            if allowed <= TOLERANCE:
                # `no significant regression` (nothing tolerated): undecided means 0 is inside.
                assert low < 0.0 <= high, table
        else:
            assert compared.verdict == "improved" and low > 0.0, table
        checked += 1
    assert checked == sum((n + 1) * (n + 2) * (n + 3) // 6 for n in range(1, 15))


def test_the_issues_examples_no_longer_collapse() -> None:
    ten = [str(i) for i in range(10)]
    same = compare_metric("exact_match", ten, np.ones(10), np.ones(10), "3%", np.random.default_rng(0), kind="binary")
    assert (same.ci_low, same.ci_high) == pytest.approx((-Z2 / (10 + Z2), Z2 / (10 + Z2)), abs=1e-6)
    assert same.verdict == "inconclusive" and same.p_value == 1.0
    assert same.explain().startswith("10 paired items cannot rule out a drop of 3%; ~260 would: ")
    gained = compare_metric("exact_match", ten, np.zeros(10), np.ones(10), "3%", np.random.default_rng(0),
                            kind="binary")
    assert gained.ci_high == 1.0 and gained.ci_low == pytest.approx(0.4449, abs=1e-4)
    assert gained.verdict == "improved"


def test_tango_interval_matches_the_published_example_and_inverts_its_test() -> None:
    # Bentur et al. (2009), the airway example of Fagerland, Lydersen and Laake's paired 2x2
    # chapter: 1 and 7 discordant pairs of 21; Tango's interval is (-0.517, -0.026).
    low, high = paired_proportion_interval(gained=1, lost=7, n=21)
    assert (low, high) == pytest.approx((-0.5172, -0.0260), abs=1e-4)
    # At its ends the score statistic is exactly the normal quantile; at 0 it is McNemar's z.
    for gained, lost, n in ((1, 7, 21), (6, 16, 161), (0, 3, 5), (12, 2, 40)):
        table = [[n - gained - lost, lost], [gained, 0]]
        chi2 = statsmodels_mcnemar(np.array(table), exact=False, correction=False).pvalue
        ours = compare_metric("m", [str(i) for i in range(n)], *_arrays(n - gained - lost, lost, gained, 0),
                              "3%", np.random.default_rng(0), kind="binary")
        assert ours.p_value == pytest.approx(chi2, rel=1e-9)
        assert (ours.ci_low, ours.ci_high) == pytest.approx(paired_proportion_interval(gained, lost, n))
    assert all(math.isnan(v) for v in paired_proportion_interval(0, 0, 0))  # no items: no interval
    assert all(math.isfinite(v) for v in paired_proportion_interval(0, 0, 1))
