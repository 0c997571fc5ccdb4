"""Per-slice comparison: a metric's values on a slice, and every metric against the baseline, slice by slice.

An overall gain can hide a loss on one kind of item. For each slice of the suite's
``slices:`` (see :mod:`evalkit.slices.spec`) and each metric of the task items, the
candidate is compared with the baseline on the items of that slice, paired by id,
with the same test as the overall comparison (:func:`evalkit.comparison.paired.compare_metric`:
McNemar's test with Tango's interval for pass/fail metrics, Wilcoxon for judge scores, the paired
bootstrap otherwise).

Many slices times many metrics make many tests, and some small p-values by chance, so
the p-values of one candidate's whole family (every slice of every metric) are
corrected with Holm's step-down method before any verdict:

* ``regressed``: the slice dropped beyond the metric's threshold, the Holm-adjusted
  p < 0.05 and the bootstrap 95% interval excludes 0;
* ``improved``: adjusted p < 0.05, interval above 0;
* ``inconclusive``: the drop exceeds the threshold but is not significant after
  correction, or the slice is too small to see a drop of the threshold's size;
* ``no_change``: otherwise.

Each row carries its slice's minimum detectable effect (``mde``): the smallest drop the
slice's items detect with 80% power at the level Holm's first step demands
(0.05 / family size), so a reader sees which slices could have shown a regression at all.
Grouping uses pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.comparison.paired import compare_metric, items_needed, metric_kind, rng_for
from evalkit.comparison.result import ALPHA, TOLERANCE, MetricKind, Threshold, ThresholdPolicy, Verdict, is_significant
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.run_facts import CandidateSlices, SliceRow, SlicesResult, SlicesSection
from evalkit.slices.spec import SliceSpec, split_sliced_metric
from evalkit.stages import register_stage

if TYPE_CHECKING:
    from evalkit.models.backend import Backend
    from evalkit.progress import Progress
    from evalkit.stages import SuiteInputs
    from evalkit.suite.config import SuiteConfig


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Return Holm step-down adjusted p-values, in the input order.

    The i-th smallest p is multiplied by (m - i) (i from 0), running maxima keep the
    adjusted values in the p-values' order, and nothing exceeds 1.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def minimum_detectable_effect(kind: MetricKind, baseline: np.ndarray, candidate: np.ndarray,
                              alpha: float, scale: float = 1.0) -> float | None:
    """Return the smallest drop ``n`` paired items detect with 80% power at level ``alpha``.

    Found by bisection on the sample-size formulas of :mod:`evalkit.comparison.paired` (the items
    needed fall as the drop grows). ``scale`` bounds the search (1.0 for 0-1 metrics).

    Returns:
        The drop, or None when even a drop of ``scale`` needs more items than there are.
    """
    n = baseline.size
    differences = candidate - baseline
    if n < 2 or items_needed(kind, differences, scale, alpha) > n:
        return None
    low, high = 0.0, scale
    for _ in range(40):
        middle = (low + high) / 2
        if items_needed(kind, differences, middle, alpha) <= n:
            high = middle
        else:
            low = middle
    return high


def _label_frame(items: Sequence[Any], specs: Sequence[SliceSpec]) -> Any:
    import pandas as pd

    return pd.DataFrame({"item_id": [item.item_id for item in items],
                         **{spec.name: [spec.label(item.fields) for item in items] for spec in specs}})


def _task_metric_frame(result: CandidateResult) -> Any:
    import pandas as pd

    rows = {item.item_id: {name: score.value for name, score in item.scores.items()} for item in result.items}
    return pd.DataFrame.from_dict(rows, orient="index")


def compare_slices(baseline: CandidateResult, candidate: CandidateResult, specs: Sequence[SliceSpec],
                   policy: ThresholdPolicy, seed: int = 0, alpha: float = ALPHA) -> CandidateSlices:
    """Compare every task metric of ``candidate`` with ``baseline`` on every slice (see the module docstring).

    Args:
        baseline: the baseline's result.
        candidate: the candidate's result, on the same items (paired by id).
        specs: the slices.
        policy: the metrics' thresholds.
        seed: the bootstrap seed.
        alpha: the family-wise error rate Holm's correction holds.
    """
    labels = _label_frame(baseline.items, specs).set_index("item_id")
    base_frame, cand_frame = _task_metric_frame(baseline), _task_metric_frame(candidate)
    metrics = [m for m in base_frame.columns if m in cand_frame.columns]
    shared = labels.index.intersection(base_frame.index).intersection(cand_frame.index)
    labels = labels.loc[shared]
    raw: list[tuple[SliceSpec, str, str, Any]] = []
    for spec in specs:
        for value, group in labels.groupby(spec.name, sort=True):
            ids = list(group.index)
            for metric in metrics:
                pair = base_frame.loc[ids, metric].to_numpy(float), cand_frame.loc[ids, metric].to_numpy(float)
                present = ~(np.isnan(pair[0]) | np.isnan(pair[1]))
                if not present.any():
                    continue
                kept = [i for i, keep in zip(ids, present, strict=True) if keep]
                rng = rng_for(seed, baseline.name, candidate.name, metric, spec.name, str(value))
                compared = compare_metric(metric, kept, pair[0][present], pair[1][present],
                                          policy.threshold_text(metric), rng)
                raw.append((spec, str(value), metric, (compared, pair[0][present], pair[1][present])))
    adjusted = holm_adjust([entry[3][0].p_value for entry in raw])
    family = max(len(raw), 1)
    result = CandidateSlices(baseline=baseline.name, family_size=len(raw))
    for (spec, value, metric, (compared, base, cand)), p_adj in zip(raw, adjusted, strict=True):
        kind = metric_kind(metric, base, cand)
        scale = 1.0 if kind == "binary" else max(float(np.max(np.abs(np.concatenate([base, cand])))), 1.0)
        mde = minimum_detectable_effect(kind, base, cand, alpha / family, scale)
        # The slice's labels say which items are in it: the flips are kept as counts only.
        counted = replace(compared, pass_to_fail=[], fail_to_pass=[], pass_to_fail_total=compared.n_pass_to_fail,
                          fail_to_pass_total=compared.n_fail_to_pass)
        result.rows.append(SliceRow(
            slice=spec.name, value=value, comparison=counted, p_adjusted=p_adj, mde=mde,
            verdict=_verdict(compared.delta, compared.baseline_value, compared.threshold,
                             p_adj, compared.ci_low, compared.ci_high, mde),
        ))
    return result


def _verdict(delta: float, baseline_value: float, threshold: str, p_adjusted: float,
             ci_low: float, ci_high: float, mde: float | None) -> Verdict:
    allowed = Threshold.parse(threshold).allowed_drop(baseline_value)
    significant = is_significant(p_adjusted, ci_low, ci_high)
    if -delta > allowed + TOLERANCE:
        return "regressed" if significant else "inconclusive"
    if significant and delta > 0:
        return "improved"
    if allowed > TOLERANCE and (mde is None or mde > allowed + TOLERANCE):
        return "inconclusive"
    return "no_change"


def slices_section(run: RunResult, specs: Sequence[SliceSpec], policy: ThresholdPolicy,
                   seed: int = 0) -> SlicesResult:
    """Return the ``slices`` section: item labels and every candidate's rows."""
    evaluated = [c for c in run.candidates if c.status == "ok"]
    base = next((c for c in evaluated if c.name == run.baseline), None)
    items = base.items if base is not None else (evaluated[0].items if evaluated else [])
    frame = _label_frame(items, specs)
    labels = {spec.name: dict(zip(frame["item_id"], frame[spec.name], strict=True)) for spec in specs}
    candidates = {other.name: compare_slices(base, other, specs, policy, seed)
                  for other in evaluated if base is not None and other.name != base.name}
    return SlicesResult(correction="holm", alpha=ALPHA, labels=labels, candidates=candidates)


def slice_regressions(run: RunResult) -> list[str]:
    """Return one line per regressed slice recorded in the run (empty: none)."""
    section: SlicesSection | None = run.section("slices")
    if section is None:
        return []
    return [f"slice regression {name}: {row.sliced_metric} "
            f"{row.comparison.baseline_value:.3f} -> {row.comparison.candidate_value:.3f} "
            f"(Holm-adjusted p={row.p_adjusted:.3g}, {row.comparison.n_items} items)"
            for name, entry in section.candidates.items() for row in entry.rows if row.verdict == "regressed"]


@register_stage("slices")
def run_slices(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """The run stage: compare every candidate slice by slice when the suite has ``slices:``."""
    suite: SuiteConfig = inputs.suite
    specs = list(getattr(suite, "slices", []) or [])
    if not specs:
        return
    run.set_section("slices", slices_section(run, specs, ThresholdPolicy.from_suite(suite)))
    for line in slice_regressions(run):
        progress.note(line)
        run.warnings.append(line)


# A metric's values on one slice of the items (``exact_match[category=billing]``).
def item_labels(run: RunResult, slice_name: str) -> dict[str, str] | None:
    """Return item id -> slice label recorded by the slices stage (None when not recorded)."""
    section: SlicesSection | None = run.section("slices")
    if section is None:
        return None
    labels = section.labels.get(slice_name)
    return None if labels is None else dict(labels)


def sliced_values(run: RunResult, candidate: CandidateResult, metric: str) -> dict[str, float]:
    """Return item id -> value of a metric, or of one slice of it (``metric[slice=value]``).

    Empty when the metric, or the slice's labels, were not recorded in the run.
    """
    parts = split_sliced_metric(metric)
    if parts is None:
        return candidate.values(metric)
    base_metric, slice_name, wanted = parts
    labels = item_labels(run, slice_name)
    if labels is None:
        return {}
    return {item_id: value for item_id, value in candidate.values(base_metric).items()
            if labels.get(item_id) == wanted}
