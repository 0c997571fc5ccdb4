"""One metric, baseline vs candidate on the same items: its paired test, interval and verdict.

For a metric both sides measured, on the items paired by id (:func:`compare_metric`):

* the absolute and relative delta of the means (candidate - baseline);
* a 95% interval on the delta and a paired test, chosen by the metric's kind, which its
  check declared when it registered (:func:`metric_kind`), not by its values: for
  pass/fail metrics (``binary``) Tango's score interval and McNemar's test in the score
  form that interval inverts (:mod:`evalkit.comparison.stats`), so they never disagree and the
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
  (:func:`items_needed`: :func:`evalkit.comparison.stats.mcnemar_sample_size` for pass/fail metrics,
  :func:`evalkit.comparison.stats.paired_mean_sample_size` otherwise), which is also the
  non-inferiority size: the items that show a drop within the threshold when the
  candidate truly equals the baseline.

A metric that ``regressed`` fails the run (exit 1). Whether an ``inconclusive`` drop
bar fails it is the suite's ``inconclusive:`` choice (default ``fail``, see
:mod:`evalkit.bars.evaluate`); an inconclusive metric that no bar names is reported, not gated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np

from evalkit.comparison.result import TOLERANCE, MetricComparison, MetricKind, TestName, Verdict, is_significant
from evalkit.comparison.stats import (
    mcnemar_sample_size,
    mcnemar_score_p,
    paired_bootstrap,
    paired_mean_sample_size,
    paired_proportion_interval,
    wilcoxon_signed_rank,
)
from evalkit.comparison.thresholds import ALPHA, JUDGE_PREFIX, POWER, Threshold

__all__ = ["DropOutcome", "compare_metric", "detectable_drop", "drop_outcome", "items_needed", "metric_kind"]

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
