"""One metric, baseline vs candidate on the same items: the paired tests and intervals, and its verdict.

For a metric both sides measured, on the items paired by id (:func:`compare_metric`):

* the absolute and relative delta of the means (candidate - baseline);
* a 95% interval on the delta and a paired test, chosen by the metric's kind, which its
  check declared when it registered (:func:`metric_kind`), not by its values: for
  pass/fail metrics (``binary``) Tango's score interval and McNemar's test in the score
  form that interval inverts (below), so they never disagree and the
  interval keeps an honest width at small n (10 of 10 against 10 of 10 is about ±0.28,
  not a point); otherwise a seeded paired bootstrap interval with the Wilcoxon
  signed-rank test for judge scores (``judge.*``) and ``ordinal`` ones, and the
  bootstrap's own p-value for ``continuous`` ones (a continuous metric that happens to
  be all 0/1 included);
* the items that flipped pass -> fail and fail -> pass (pass/fail metrics).

Direction
---------
Every metric has a declared direction (``higher_is_better``: what its check or
benchmark registered; True unless declared otherwise). The rule below is written for
higher-is-better metrics; for a lower-is-better one (bits per byte, perplexity) it is
applied to the delta turned around (baseline - candidate), so a *rise* is the drop the
threshold bounds (``3%``: the candidate may rise at most 3% over the baseline's value),
and ``improved`` means significantly lower. The recorded delta, its interval and the
means stay as measured (candidate - baseline).

How the interval and the threshold combine into a verdict
---------------------------------------------------------
A metric's threshold (``3%`` relative to the baseline's value, or ``2pt``: 2 points,
i.e. 0.02 in the metric's units) is the largest drop that is tolerated. The verdict
asks what the paired 95% interval of the delta shows about that drop, with
the same burden of proof in both directions (:func:`drop_outcome`, the one rule the
bars, the CLI, the report and the pytest plugin all rest on):

* ``regressed``: the whole interval lies beyond the allowed drop (its upper end is a
  larger drop than the threshold allows) and the paired test agrees (p < 0.05);
* ``improved``: the candidate is significantly better (p < 0.05 and the interval
  excludes 0 on the positive side);
* ``no_change``: the whole interval lies within the allowed drop; for a bootstrap
  interval the set must also have the items to have seen a drop of the threshold's size
  with 80% power (a zero-width interval from a few identical answers proves nothing),
  while Tango's interval carries that uncertainty itself and decides alone;
* ``inconclusive``: anything else: the interval straddles the allowed drop, or the set
  is too small. ``items_needed`` says how many paired items would decide it: when the
  interval straddles the allowed drop, those that give 80% power to put it on one side,
  at the observed delta and spread (:func:`_items_to_decide`); when it is within but
  the set is small, those that give 80% power against a drop of the threshold's size
  (:func:`items_needed`: :func:`evalkit.comparison.paired.mcnemar_sample_size` for pass/fail metrics,
  :func:`evalkit.comparison.paired.paired_mean_sample_size` otherwise), which is also the
  non-inferiority size: the items that show a drop within the threshold when the
  candidate truly equals the baseline.

A metric that ``regressed`` fails the run (exit 1). Whether an ``inconclusive`` drop
bar fails it is the suite's ``inconclusive:`` choice (default ``fail``, see
:mod:`evalkit.bars.evaluate`); an inconclusive metric that no bar names is reported, not gated.

Also here:

* Paired statistics over numpy arrays, with no knowledge of runs or suites: :func:`paired_bootstrap`,
  :func:`mcnemar_exact`, :func:`mcnemar_score_p`, :func:`paired_proportion_interval`,
  :func:`wilcoxon_signed_rank`, and the sample sizes :func:`mcnemar_sample_size`, :func:`paired_mean_sample_size`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from evalkit.comparison.result import (
    ALPHA,
    CONFIDENCE,
    JUDGE_PREFIX,
    POWER,
    TOLERANCE,
    MetricComparison,
    MetricKind,
    TestName,
    Threshold,
    Verdict,
    is_significant,
)

# Paired statistics for comparing two candidates on the same items.
#
# Pure functions over numpy arrays, with no knowledge of runs or suites:
#
# * :func:`paired_bootstrap` – a seeded paired bootstrap of the mean difference, with its
#   95% percentile interval and a two-sided bootstrap p-value;
# * :func:`mcnemar_exact` – McNemar's exact test on the discordant pairs of a pass/fail metric;
# * :func:`mcnemar_score_p` and :func:`paired_proportion_interval` – McNemar's asymptotic
#   (score) test and Tango's score interval for the difference of paired proportions, the
#   pair a pass/fail metric's verdict is decided with: the interval is the set of
#   differences that test does not reject, so the two never disagree, and it keeps its
#   width when the items are few or every pair agrees (a bootstrap collapses to a point);
# * :func:`wilcoxon_signed_rank` – the Wilcoxon signed-rank test on paired scores;
# * :func:`mcnemar_sample_size` and :func:`paired_mean_sample_size` – how many items give
#   80% power to detect a drop of a given size.
#
# The bootstrap resamples *items* (pairs), so the baseline's and the candidate's values on
# an item always travel together. It is computed exactly and fast: the mean of a resample
# only depends on how often each distinct paired difference is drawn, so when the
# differences take few distinct values (every pass/fail metric has at most three: -1, 0,
# +1) the resample counts are drawn from a multinomial over those values, which costs
# O(resamples × distinct values) instead of O(resamples × items).

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


DropOutcome = Literal["beyond", "within", "undecided"]


def drop_outcome(
    ci_low: float, ci_high: float, p_value: float, allowed: float, n_items: int, items_needed: int | None
) -> DropOutcome:
    """Decide what the paired interval shows about a drop: the one rule every gate uses.

    Args:
        ci_low: lower end of the 95% interval of the delta (candidate - baseline).
        ci_high: its upper end.
        p_value: the paired test's p-value.
        allowed: the tolerated absolute drop (:meth:`Threshold.allowed_drop`), >= 0.
        n_items: the paired items.
        items_needed: items for 80% power against a drop of ``allowed`` (None: no size needed).

    Returns:
        ``beyond``: the whole interval is a larger drop than allowed and the test agrees;
        ``within``: the whole interval is within the allowed drop, on enough items (or the
        candidate is significantly better); ``undecided`` otherwise.
    """
    if ci_high < -allowed - TOLERANCE and p_value < ALPHA:
        return "beyond"
    if ci_low >= -allowed - TOLERANCE:
        powered = items_needed is None or n_items >= items_needed
        better = ci_low > 0.0 and p_value < ALPHA
        if powered or better:
            return "within"
    return "undecided"


def metric_kind(metric: str, baseline: np.ndarray, candidate: np.ndarray,
                declared: str | None = None) -> MetricKind:
    """Classify a metric for its paired test: by what its check declared, never by its values.

    A check's metrics carry the kind the check registered with (``binary``, ``continuous``,
    ``ordinal``: :mod:`evalkit.checks.registry`), so a continuous metric that happens to
    be all 0/1 still gets the continuous test. Judge scores are known by name. Only a
    metric nothing declared (a benchmark's per-item values, a run stored before kinds were
    recorded) is classified by its values: all 0/1 is pass/fail, else continuous.
    """
    if declared in ("binary", "continuous", "ordinal"):
        return declared  # type: ignore[return-value]
    if metric.startswith(JUDGE_PREFIX):
        return "judge"
    if np.all((baseline == 0.0) | (baseline == 1.0)) and np.all((candidate == 0.0) | (candidate == 1.0)):
        return "binary"
    return "continuous"


def compare_metric(
    metric: str,
    ids: Sequence[str],
    baseline: np.ndarray,
    candidate: np.ndarray,
    threshold: str,
    rng: np.random.Generator,
    kind: MetricKind | None = None,
    higher_is_better: bool = True,
) -> MetricComparison:
    """Compare one metric on paired items and give its verdict.

    Args:
        metric: the metric's name (``judge.*`` marks judge scores).
        ids: the paired items' ids, in the order of the arrays.
        baseline: the baseline's values.
        candidate: the candidate's values, paired with ``baseline``.
        threshold: the tolerated drop, ``3%`` or ``2pt``.
        rng: the bootstrap's random generator.
        kind: the metric's kind when the caller knows it (declared by its check); default
            :func:`metric_kind` from its name and values.
        higher_is_better: the metric's declared direction; when False a rise is the
            drop the threshold bounds (see the module docstring).
    """
    n = len(ids)
    kind = kind or metric_kind(metric, baseline, candidate)
    base_mean, cand_mean = float(baseline.mean()), float(candidate.mean())
    delta = cand_mean - base_mean
    pass_to_fail: list[str] = []
    fail_to_pass: list[str] = []
    test: TestName
    if kind == "binary":
        # Tango's score interval and the McNemar test it inverts: one decision, honest at small n.
        test = "mcnemar"
        base_pass, cand_pass = baseline >= 1.0, candidate >= 1.0
        pass_to_fail = [ids[i] for i in np.flatnonzero(base_pass & ~cand_pass)]
        fail_to_pass = [ids[i] for i in np.flatnonzero(~base_pass & cand_pass)]
        p_value = mcnemar_score_p(len(fail_to_pass), len(pass_to_fail))
        ci_low, ci_high = paired_proportion_interval(len(fail_to_pass), len(pass_to_fail), n)
    else:
        boot = paired_bootstrap(baseline, candidate, rng)
        ci_low, ci_high = boot.ci_low, boot.ci_high
        if kind in ("judge", "ordinal"):
            test, p_value = "wilcoxon", wilcoxon_signed_rank(baseline, candidate)
        else:
            test, p_value = "bootstrap", boot.p_value
    parsed = Threshold.parse(threshold)
    allowed = parsed.allowed_drop(base_mean)
    # The decision reads the delta in the better direction: a gain is positive either way.
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * delta
    gain_low, gain_high = sorted((sign * ci_low, sign * ci_high))
    drop = -gain
    significant = is_significant(p_value, ci_low, ci_high)
    # A zero threshold cannot be powered for; size for the drop actually seen instead.
    size_for = allowed if allowed > TOLERANCE else max(drop, 0.0)
    # A share (0..1, higher is better) moves by whole items; a measurement such as bits per
    # byte (lower is better, unbounded) does not, and an unchanged model shows no spread at all.
    whole_units = kind != "continuous" or (higher_is_better and bool(
        np.all((baseline >= 0.0) & (baseline <= 1.0)) and np.all((candidate >= 0.0) & (candidate <= 1.0))))
    needed = (items_needed(kind, candidate - baseline, size_for, whole_units=whole_units)
              if size_for > TOLERANCE else None)
    # Tango's interval keeps its width at small n, so it decides alone; a bootstrap interval
    # can collapse (identical pairs), so those kinds also need the items to have power.
    outcome = drop_outcome(gain_low, gain_high, p_value, allowed, n, None if kind == "binary" else needed)
    verdict: Verdict
    if outcome == "beyond":
        verdict = "regressed"
    elif significant and gain > 0:
        verdict = "improved"
    elif outcome == "within":
        verdict = "no_change"
    else:
        verdict = "inconclusive"
        if gain_low < -allowed - TOLERANCE and not (kind == "binary" and drop <= allowed + TOLERANCE):
            # The interval straddles the allowed drop: the items that would narrow it enough.
            # (A pass/fail metric whose drop is within keeps the non-inferiority size: its
            # interval's width at no discordance is not a spread to extrapolate from.)
            needed = _items_to_decide(n, gain_low, gain_high, gain, allowed)
        if needed is not None:
            needed = max(needed, n + 1)
    return MetricComparison(
        metric=metric, kind=kind, n_items=n, baseline_value=base_mean, candidate_value=cand_mean,
        delta=delta, relative_delta=(delta / base_mean) if base_mean != 0 else None,
        ci_low=ci_low, ci_high=ci_high, p_value=p_value, test=test, threshold=str(parsed),
        verdict=verdict, items_needed=needed if verdict == "inconclusive" else None,
        pass_to_fail=pass_to_fail, fail_to_pass=fail_to_pass, higher_is_better=higher_is_better,
        detectable_drop=detectable_drop(kind, baseline, candidate - baseline),
    )


def detectable_drop(kind: MetricKind, baseline: np.ndarray, differences: np.ndarray | None = None,
                    alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Return the smallest mean drop ``n`` paired items detect with ``power`` at two-sided level ``alpha``.

    None for fewer than two items (no spread to read).

    ``(z(1 - alpha/2) + z(power)) * sd / sqrt(n)``, where ``sd`` is the spread of the
    paired differences. For a pass/fail metric it is at least the baseline's per-item
    variance's ``sqrt(2 p (1 - p))`` (a candidate answering as often right, independently
    of the baseline: a set of identical answers shows no spread, and proves nothing);
    otherwise the observed differences' spread, or before any candidate is scored (no
    ``differences``) ``sqrt(2)`` times the baseline's own (an upper bound: pairing only
    narrows it). A drop of the threshold's size smaller than this cannot be decided at
    this ``n``: the verdict will read inconclusive unless the change is this large.
    """
    n = baseline.size
    if n < 2:
        return None
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    if kind == "binary":
        rate = float(baseline.mean())
        spread = math.sqrt(2 * rate * (1 - rate))
        if differences is not None and differences.size > 1:
            spread = max(spread, float(differences.std(ddof=1)))
    elif differences is not None and differences.size > 1:
        spread = float(differences.std(ddof=1))
    else:
        spread = math.sqrt(2) * float(baseline.std(ddof=1))
    return z * spread / math.sqrt(n)


def _items_to_decide(n: int, ci_low: float, ci_high: float, delta: float, allowed: float) -> int | None:
    """Paired items for 80% power to place the interval on one side of the allowed drop.

    The spread of the paired differences is read off the observed interval
    (``sd = half-width * sqrt(n) / z``), and the distance to decide is that of the
    observed delta from the allowed drop: ``n = ((z(0.975) + z(0.8)) * sd / distance)**2``.
    None when the delta sits on the threshold itself (no number of items decides it).
    """
    z_alpha, z_power = NormalDist().inv_cdf(1 - ALPHA / 2), NormalDist().inv_cdf(POWER)
    distance = abs(delta + allowed)
    sd = (ci_high - ci_low) / 2 * math.sqrt(n) / z_alpha
    if distance <= TOLERANCE or sd <= 0:
        return None
    return max(n + 1, min(10**9, math.ceil(((z_alpha + z_power) * sd / distance) ** 2)))


def items_needed(kind: MetricKind, differences: np.ndarray, drop: float, alpha: float = ALPHA,
                 whole_units: bool = True) -> int:
    """Return the paired items that give 80% power to detect a mean drop of ``drop`` at level ``alpha``.

    Args:
        kind: the metric's kind: McNemar's size for ``binary``, the rank test's for
            ``judge`` and ``ordinal``, the paired mean's otherwise.
        differences: the paired differences (candidate - baseline), for the spread.
        drop: the drop to detect (> 0).
        alpha: the test's level (a family's corrected level for slices).
        whole_units: the metric's items change by whole units (pass/fail, shares,
            levels), so a drop has a least spread even when none is seen; False for an
            unbounded measurement (bits per byte), whose observed spread is all there is.
    """
    if kind == "binary":
        discordance = float(np.count_nonzero(differences)) / max(differences.size, 1)
        return mcnemar_sample_size(discordance, drop, alpha=alpha, power=POWER)
    spread = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    # A drop of `drop` made of whole-unit item changes has at least this spread; two
    # identical runs show none, which would otherwise claim two items are enough.
    floor = (math.sqrt(drop * max(1.0 - drop, 0.0)) if drop < 1 else drop) if whole_units else 0.0
    return paired_mean_sample_size(max(spread, floor), drop, alpha=alpha, power=POWER,
                                   rank_test=kind in ("judge", "ordinal"))
