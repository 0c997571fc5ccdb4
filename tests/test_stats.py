"""The paired statistics, checked against scipy, statsmodels and brute force on fixed data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar as statsmodels_mcnemar
from statsmodels.stats.power import TTestPower

from evalkit.comparison.paired import (
    bootstrap_means,
    mcnemar_exact,
    mcnemar_sample_size,
    paired_bootstrap,
    paired_mean_sample_size,
    rng_for,
    wilcoxon_signed_rank,
)


def paired_binary(both_pass: int, pass_to_fail: int, fail_to_pass: int, both_fail: int) -> tuple[np.ndarray, ...]:
    base = np.array([1] * both_pass + [1] * pass_to_fail + [0] * fail_to_pass + [0] * both_fail, dtype=float)
    cand = np.array([1] * both_pass + [0] * pass_to_fail + [1] * fail_to_pass + [0] * both_fail, dtype=float)
    return base, cand


@pytest.mark.parametrize(
    ("both_pass", "pass_to_fail", "fail_to_pass", "both_fail"),
    [(50, 10, 2, 38), (80, 3, 3, 14), (10, 0, 7, 3), (400, 31, 12, 57), (5, 1, 0, 0)],
)
def test_mcnemar_matches_statsmodels_exact(both_pass: int, pass_to_fail: int, fail_to_pass: int,
                                           both_fail: int) -> None:
    base, cand = paired_binary(both_pass, pass_to_fail, fail_to_pass, both_fail)
    ours = mcnemar_exact(base, cand)
    table = [[both_pass, pass_to_fail], [fail_to_pass, both_fail]]
    reference = statsmodels_mcnemar(table, exact=True).pvalue
    assert (ours.pass_to_fail, ours.fail_to_pass) == (pass_to_fail, fail_to_pass)
    assert ours.p_value == pytest.approx(min(1.0, reference), rel=1e-9)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    base, cand = paired_binary(30, 0, 0, 10)
    assert mcnemar_exact(base, cand).p_value == 1.0


def exact_wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided exact p-value by enumerating all 2^n sign assignments (no ties, no zeros)."""
    nonzero = differences[differences != 0]
    ranks = scipy_stats.rankdata(np.abs(nonzero))
    observed = ranks[nonzero > 0].sum()
    total = ranks.sum()
    signs = np.array(list(itertools.product([0, 1], repeat=len(ranks))))
    sums = signs @ ranks
    extreme = min(observed, total - observed)
    return float(min(1.0, 2 * np.mean(sums <= extreme)))


def test_wilcoxon_matches_brute_force_exact_distribution() -> None:
    base = np.array([3, 4, 2, 5, 3, 4, 1, 2, 5, 3, 4, 2], dtype=float)
    shift = np.array([0.5, -1.5, 2.5, -0.25, 1.0, 3.5, -2.0, 0.75, 1.25, 4.0, 0.0, 0.0])
    cand = base + shift
    # The two zero differences are dropped (Wilcoxon's rule), leaving 10 distinct |d|.
    assert wilcoxon_signed_rank(base, cand) == pytest.approx(exact_wilcoxon_p(cand - base), rel=1e-9)


def test_wilcoxon_matches_scipy_on_judge_scores() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(1, 6, size=300).astype(float)
    cand = np.clip(base + rng.choice([-1, 0, 0, 0, 1], size=300, p=[0.3, 0.2, 0.2, 0.2, 0.1]), 1, 5)
    expected = scipy_stats.wilcoxon(cand - base, zero_method="wilcox").pvalue
    assert wilcoxon_signed_rank(base, cand) == pytest.approx(expected)
    assert wilcoxon_signed_rank(base, cand) < 0.05


def test_wilcoxon_all_zero_differences_is_one() -> None:
    scores = np.array([4.0, 5.0, 3.0, 4.0])
    assert wilcoxon_signed_rank(scores, scores.copy()) == 1.0


@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_bootstrap_interval_matches_scipy_paired_percentile(kind: str) -> None:
    rng = np.random.default_rng(3)
    n = 400
    if kind == "binary":
        base = (rng.random(n) < 0.8).astype(float)
        cand = np.where(rng.random(n) < 0.1, 1 - base, base)
    else:
        base = rng.random(n)
        cand = base + rng.normal(-0.03, 0.1, n)
    ours = paired_bootstrap(base, cand, rng_for(0, kind), n_resamples=20_000)
    reference = scipy_stats.bootstrap(
        (base, cand), lambda b, c, axis=-1: np.mean(c - b, axis=axis), paired=True, method="percentile",
        n_resamples=20_000, confidence_level=0.95, rng=np.random.default_rng(1),
    ).confidence_interval
    # Resampling noise, plus one step of the grid a binary metric's means lie on.
    slack = 0.03 * (reference.high - reference.low) + 1 / n
    assert ours.mean == pytest.approx(float(np.mean(cand - base)))
    assert ours.ci_low == pytest.approx(reference.low, abs=slack)
    assert ours.ci_high == pytest.approx(reference.high, abs=slack)


def test_multinomial_resampling_has_the_index_bootstraps_distribution() -> None:
    rng = np.random.default_rng(11)
    differences = rng.choice([-1.0, 0.0, 1.0], size=2000, p=[0.07, 0.88, 0.05])
    fast = bootstrap_means(differences, np.random.default_rng(1), 10_000)
    indices = np.random.default_rng(2).integers(0, differences.size, size=(10_000, differences.size))
    slow = differences[indices].mean(axis=1)
    assert fast.mean() == pytest.approx(slow.mean(), abs=4e-4)
    assert fast.std() == pytest.approx(slow.std(), rel=0.04)
    assert np.quantile(fast, 0.025) == pytest.approx(np.quantile(slow, 0.025), abs=1.5e-3)


def test_bootstrap_is_seeded_and_order_independent() -> None:
    base, cand = paired_binary(70, 9, 4, 17)
    first = paired_bootstrap(base, cand, rng_for(5, "lora", "exact_match"))
    paired_bootstrap(base, cand, rng_for(5, "lora", "json_valid"))  # another metric's stream in between
    again = paired_bootstrap(base, cand, rng_for(5, "lora", "exact_match"))
    other_seed = paired_bootstrap(base, cand, rng_for(6, "lora", "exact_match"))
    assert first == again
    assert first != other_seed


def test_bootstrap_p_value_agrees_with_interval() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(300)
    for shift in (-0.2, -0.02, 0.0, 0.05):
        result = paired_bootstrap(base, base + shift + rng.normal(0, 0.3, 300), rng_for(0, str(shift)))
        excludes_zero = result.ci_low > 0 or result.ci_high < 0
        assert (result.p_value < 0.05) == excludes_zero


def simulated_mcnemar_power(n: int, pass_to_fail: float, fail_to_pass: float, reps: int = 4000) -> float:
    rng = np.random.default_rng(1)
    counts = rng.multinomial(n, [pass_to_fail, fail_to_pass, 1 - pass_to_fail - fail_to_pass], size=reps)
    discordant = counts[:, 0] + counts[:, 1]
    smaller = np.minimum(counts[:, 0], counts[:, 1])
    p_values = np.where(discordant > 0, np.minimum(1.0, 2 * scipy_stats.binom.cdf(smaller, discordant, 0.5)), 1.0)
    return float(np.mean(p_values < 0.05))


@pytest.mark.parametrize(("discordance", "drop"), [(0.1, 0.03), (0.2, 0.05), (0.3, 0.1)])
def test_mcnemar_sample_size_gives_about_80_percent_power(discordance: float, drop: float) -> None:
    n = mcnemar_sample_size(discordance, drop)
    power = simulated_mcnemar_power(n, (discordance + drop) / 2, (discordance - drop) / 2)
    # Connor's formula is a normal approximation; the exact test is a little conservative.
    assert 0.74 <= power <= 0.86
    assert simulated_mcnemar_power(n // 3, (discordance + drop) / 2, (discordance - drop) / 2) < 0.6


def test_mcnemar_sample_size_raises_discordance_to_the_drop() -> None:
    # Two identical runs disagree nowhere; a drop of 0.05 needs at least 5% discordant pairs.
    assert mcnemar_sample_size(0.0, 0.05) == mcnemar_sample_size(0.05, 0.05)
    with pytest.raises(ValueError, match="positive"):
        mcnemar_sample_size(0.1, 0.0)


@pytest.mark.parametrize(("sd", "drop"), [(1.0, 0.3), (0.5, 0.1), (2.0, 1.0), (0.8, 0.05)])
def test_paired_mean_sample_size_matches_statsmodels_t_test(sd: float, drop: float) -> None:
    expected = TTestPower().solve_power(effect_size=drop / sd, alpha=0.05, power=0.8)
    assert abs(paired_mean_sample_size(sd, drop) - expected) <= 1.5
    wilcoxon_size = paired_mean_sample_size(sd, drop, rank_test=True)
    assert wilcoxon_size == pytest.approx(expected * np.pi / 3, abs=2)
