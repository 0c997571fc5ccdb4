"""Paired statistics for comparing two candidates on the same items.

Pure functions over numpy arrays, with no knowledge of runs or suites:

* :func:`paired_bootstrap` – a seeded paired bootstrap of the mean difference, with its
  95% percentile interval and a two-sided bootstrap p-value;
* :func:`mcnemar_exact` – McNemar's exact test on the discordant pairs of a pass/fail metric;
* :func:`mcnemar_score_p` and :func:`paired_proportion_interval` – McNemar's asymptotic
  (score) test and Tango's score interval for the difference of paired proportions, the
  pair a pass/fail metric's verdict is decided with: the interval is the set of
  differences that test does not reject, so the two never disagree, and it keeps its
  width when the items are few or every pair agrees (a bootstrap collapses to a point);
* :func:`wilcoxon_signed_rank` – the Wilcoxon signed-rank test on paired scores;
* :func:`mcnemar_sample_size` and :func:`paired_mean_sample_size` – how many items give
  80% power to detect a drop of a given size.

The bootstrap resamples *items* (pairs), so the baseline's and the candidate's values on
an item always travel together. It is computed exactly and fast: the mean of a resample
only depends on how often each distinct paired difference is drawn, so when the
differences take few distinct values (every pass/fail metric has at most three: -1, 0,
+1) the resample counts are drawn from a multinomial over those values, which costs
O(resamples × distinct values) instead of O(resamples × items).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from evalkit.comparison.thresholds import ALPHA, CONFIDENCE, POWER

FloatArray = npt.NDArray[np.float64]

DEFAULT_RESAMPLES = 5_000
"""Bootstrap resamples; the Monte-Carlo error of the interval's ends is ~1% of its width."""
# Rows of the resample matrix generated at a time on the general path (bounds memory).
_GATHER_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class BootstrapResult:
    """A paired bootstrap of the mean difference (candidate - baseline).

    Attributes:
        mean: the observed mean difference.
        ci_low: the lower end of the percentile interval.
        ci_high: the upper end of the percentile interval.
        p_value: two-sided bootstrap p-value for "the mean difference is 0": twice the
            smaller share of resampled means on either side of 0, capped at 1. It is
            below 0.05 exactly when the 95% interval excludes 0 (up to ties at 0).
    """

    mean: float
    ci_low: float
    ci_high: float
    p_value: float


def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """Return a generator seeded by ``seed`` and labels, independent of call order.

    Each (candidate, metric) pair gets its own stream, so adding a metric to a suite
    does not change the intervals of the others.
    """
    words = [seed & 0xFFFFFFFF, *(zlib.crc32(label.encode("utf-8")) for label in labels)]
    return np.random.default_rng(np.random.SeedSequence(words))


def bootstrap_means(
    differences: FloatArray, rng: np.random.Generator, n_resamples: int = DEFAULT_RESAMPLES
) -> FloatArray:
    """Return the means of ``n_resamples`` resamples (with replacement) of ``differences``.

    Equivalent in distribution to drawing item indices with replacement; see the module
    docstring for why drawing counts of distinct values is exact.
    """
    n = differences.size
    if n == 0:
        return np.zeros(0)
    values, counts = np.unique(differences, return_counts=True)
    if values.size == 1:
        return np.full(n_resamples, float(values[0]))
    # A binomial draw costs far more than a gather; multinomial wins while values are few.
    if values.size * 20 < n:
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return np.asarray(draws @ values / n, dtype=np.float64)
    means = np.empty(n_resamples)
    rows = max(1, _GATHER_CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = differences[indices].mean(axis=1)
    return means


def paired_bootstrap(
    baseline: FloatArray,
    candidate: FloatArray,
    rng: np.random.Generator,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> BootstrapResult:
    """Bootstrap the mean paired difference ``candidate - baseline``.

    Args:
        baseline: the baseline's values, one per item.
        candidate: the candidate's values on the same items, in the same order.
        rng: the random generator (see :func:`rng_for`).
        n_resamples: number of resamples.
        confidence: the interval's coverage.

    Returns:
        The observed mean difference, the percentile interval and a bootstrap p-value.
    """
    differences = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if differences.size == 0:
        return BootstrapResult(math.nan, math.nan, math.nan, 1.0)
    means = bootstrap_means(differences, rng, n_resamples)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    below = float(np.mean(means <= 0.0))
    above = float(np.mean(means >= 0.0))
    p_value = min(1.0, 2.0 * min(below, above))
    return BootstrapResult(float(differences.mean()), float(low), float(high), p_value)


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on a pass/fail metric.

    Attributes:
        pass_to_fail: items the baseline passed and the candidate failed.
        fail_to_pass: items the baseline failed and the candidate passed.
        p_value: two-sided exact p-value (1.0 when no pair is discordant).
    """

    pass_to_fail: int
    fail_to_pass: int
    p_value: float


def mcnemar_exact(baseline: FloatArray, candidate: FloatArray) -> McNemarResult:
    """McNemar's exact test: a two-sided binomial test (p = 1/2) on the discordant pairs.

    Under "no difference" each discordant pair is equally likely to go either way, so
    the number that went pass -> fail among the b + c discordant pairs is Binomial(b + c, 1/2).

    Args:
        baseline: 0/1 per item (1 = pass).
        candidate: 0/1 per item, paired with ``baseline``.
    """
    from scipy.special import bdtr

    base_pass = np.asarray(baseline) >= 1.0
    cand_pass = np.asarray(candidate) >= 1.0
    pass_to_fail = int(np.count_nonzero(base_pass & ~cand_pass))
    fail_to_pass = int(np.count_nonzero(~base_pass & cand_pass))
    discordant = pass_to_fail + fail_to_pass
    if discordant == 0:
        return McNemarResult(0, 0, 1.0)
    # Binomial(n, 1/2) is symmetric, so the two-sided p-value (scipy's binomtest with
    # p=0.5) is twice the smaller tail, capped at 1: one cdf call, and scipy.special
    # imports in a fraction of scipy.stats' time.
    p_value = 2.0 * float(bdtr(min(pass_to_fail, fail_to_pass), discordant, 0.5))
    return McNemarResult(pass_to_fail, fail_to_pass, min(1.0, p_value))


def mcnemar_score_p(gained: int, lost: int) -> float:
    """McNemar's asymptotic test: the two-sided p-value of ``z = (gained - lost) / sqrt(gained + lost)``.

    It is Tango's score test at a difference of 0, so it rejects exactly when
    :func:`paired_proportion_interval` excludes 0. Fagerland, Lydersen and Laake
    ("Recommended tests and confidence intervals for paired binomial proportions",
    Statistics in Medicine 33, 2014) recommend it over the exact conditional test, which
    is conservative at small n; 1.0 when no pair is discordant.

    Args:
        gained: items the baseline failed and the candidate passed.
        lost: items the baseline passed and the candidate failed.
    """
    discordant = gained + lost
    if discordant == 0:
        return 1.0
    return min(1.0, math.erfc(abs(gained - lost) / math.sqrt(discordant) / math.sqrt(2.0)))


def paired_proportion_interval(gained: int, lost: int, n: int,
                               confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Tango's score interval for a difference of paired proportions (candidate - baseline).

    T. Tango, "Equivalence test and confidence interval for the difference in proportions
    for the paired-sample design", Statistics in Medicine 17(8), 1998. The interval is
    every difference ``d`` whose score statistic

        T(d) = (gained - lost - n d) / sqrt(n (2 q(d) + d (1 - d)))

    stays within the normal quantile, where ``q(d)`` is the maximum-likelihood share of
    ``lost`` pairs under the difference ``d``. Its ends are found by bisection (``T``
    falls as ``d`` rises). With no discordant pair it is ``±z²/(n + z²)``: 10 items that
    all agree give about ±0.28, not the point a bootstrap of identical pairs collapses to.

    Args:
        gained: items the baseline failed and the candidate passed.
        lost: items the baseline passed and the candidate failed.
        n: all paired items (concordant ones included).
        confidence: the interval's coverage.

    Returns:
        ``(low, high)`` within [-1, 1]; ``(nan, nan)`` for no items.
    """
    if n <= 0:
        return math.nan, math.nan
    z = _z(0.5 + confidence / 2)
    estimate = (gained - lost) / n

    def statistic(difference: float) -> float:
        a = 2.0 * n
        b = -gained - lost + (2.0 * n - gained + lost) * difference
        c = -lost * difference * (1.0 - difference)
        share_lost = (math.sqrt(max(b * b - 4.0 * a * c, 0.0)) - b) / (2.0 * a)
        variance = n * (2.0 * share_lost + difference * (1.0 - difference))
        centre = gained - lost - n * difference
        if variance <= 0.0:
            return math.copysign(math.inf, centre) if centre else 0.0
        return centre / math.sqrt(variance)

    def root(target: float, low: float, high: float) -> float:
        # statistic() falls from low to high; find where it crosses target.
        for _ in range(100):
            middle = (low + high) / 2
            if statistic(middle) > target:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    edge = 1e-12
    lower = -1.0 if estimate <= -1.0 or statistic(-1.0 + edge) <= z else root(z, -1.0 + edge, estimate)
    upper = 1.0 if estimate >= 1.0 or statistic(1.0 - edge) >= -z else root(-z, estimate, 1.0 - edge)
    return lower, upper


def wilcoxon_signed_rank(baseline: FloatArray, candidate: FloatArray) -> float:
    """Return the two-sided p-value of the Wilcoxon signed-rank test on paired scores.

    The only function here that imports ``scipy.stats`` (seconds to import): suites
    without judge metrics never pay for it.

    Zero differences are dropped (scipy's ``zero_method="wilcox"``, Wilcoxon's own
    rule); when every difference is zero there is no evidence of a change and the
    p-value is 1.0. scipy picks the exact null distribution for small samples without
    ties and the normal approximation otherwise.
    """
    from scipy.stats import wilcoxon

    differences = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if np.count_nonzero(differences) == 0:
        return 1.0
    result = wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
    p_value = float(result.pvalue)
    return 1.0 if math.isnan(p_value) else min(1.0, p_value)


def _z(probability: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(probability))


def mcnemar_sample_size(discordance: float, drop: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Items needed for McNemar's test to detect a drop of ``drop`` with the given power.

    Connor's formula for paired proportions (R. J. Connor, "Sample size for testing
    differences in proportions for the paired-sample design", Biometrics 43(1), 1987)::

        n = ( z(1 - alpha/2) * sqrt(psi) + z(power) * sqrt(psi - drop**2) )**2 / drop**2

    where ``psi`` is the share of discordant pairs (estimated from the observed pairs).
    A drop of ``drop`` needs at least ``drop`` of the pairs to be discordant, so ``psi``
    is raised to ``drop`` when fewer pairs disagreed (two identical runs have psi = 0).

    Args:
        discordance: observed share of discordant pairs, in [0, 1].
        drop: the difference in pass rates to detect (> 0, absolute).
        alpha: two-sided significance level.
        power: the wanted power.
    """
    if drop <= 0:
        raise ValueError("drop must be positive")
    psi = min(1.0, max(discordance, drop))
    z_alpha, z_power = _z(1 - alpha / 2), _z(power)
    root = z_alpha * math.sqrt(psi) + z_power * math.sqrt(max(psi - drop * drop, 0.0))
    return max(2, math.ceil(root * root / (drop * drop)))


def paired_mean_sample_size(
    sd_difference: float, drop: float, alpha: float = ALPHA, power: float = POWER, rank_test: bool = False
) -> int:
    """Items needed to detect a mean paired drop of ``drop`` with the given power.

    The normal-approximation size of a paired t-test with Guenther's correction, which
    matches the exact t-test size to within an item::

        n = ((z(1 - alpha/2) + z(power)) * sd / drop)**2 + z(1 - alpha/2)**2 / 2

    For the Wilcoxon signed-rank test (``rank_test=True``) the size is divided by its
    asymptotic relative efficiency against the t-test under normality, 3/pi (Noether 1987).

    Args:
        sd_difference: standard deviation of the paired differences.
        drop: the mean difference to detect (> 0).
        alpha: two-sided significance level.
        power: the wanted power.
        rank_test: size for the Wilcoxon signed-rank test instead of the t-test.
    """
    if drop <= 0:
        raise ValueError("drop must be positive")
    z_alpha, z_power = _z(1 - alpha / 2), _z(power)
    size = ((z_alpha + z_power) * sd_difference / drop) ** 2 + z_alpha**2 / 2
    if rank_test:
        size /= 3 / math.pi
    return max(2, math.ceil(size))
