"""Quality bars checked against a run: the suite's ``bars:`` section (:mod:`evalkit.bars.spec`) meets the evidence.

The grammar (``exact_match >= 0.80``, ``mmlu_mini max_drop 3%``, ``no significant
regression [on METRIC]``) and :class:`~evalkit.bars.spec.BarSpec` live in
:mod:`evalkit.bars.spec`, which the suite config imports; what a check found is a
:class:`~evalkit.bars.spec.BarResult`. :func:`evaluate_bars` checks bars against a
:class:`~evalkit.record.results.RunResult` and its comparison (:mod:`evalkit.comparison.compare`), and
:func:`record_bars` stores the results in ``run.sections["bars"]``.

Every bar has one of three outcomes, decided by the evidence (``not_counted`` is a
fourth state for bars that cannot count at all: an uncalibrated judge, a candidate
the suite lets be missing):

* a threshold bar (``exact_match >= 0.80``) is ``passed`` or ``failed`` on the mean;
* a drop bar (``max_drop``, ``no significant regression``) is ``failed`` only when
  the paired 95% interval of the delta lies wholly beyond the allowed drop, ``passed``
  only when it lies wholly within it (on enough items), and ``inconclusive`` otherwise,
  with the paired items that would decide it (:func:`evalkit.comparison.paired.drop_outcome`).

What an inconclusive bar does is the suite's ``inconclusive:`` choice: ``fail`` (the
default: an undecided gate never reads as a pass; exit 1, the message says it is
undecided and how many items would decide it) or ``warn`` (shown, not gating).
:func:`bar_blocks` is that rule; :func:`evalkit.bars.verdict.run_verdict` (the CLI, the
report) and the pytest plugin ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from evalkit.bars.spec import (
    DEFAULT_INCONCLUSIVE,
    OPERATORS,
    BarKind,
    BarResult,
    BarSpec,
    BarStatus,
    InconclusivePolicy,
    ItemEvidence,
    Operator,
    SuiteBar,
    bar_blocks,
    format_value,
    mean_interval,
    parse_bar_expression,
)
from evalkit.bars.verdict import run_verdict
from evalkit.comparison.result import Threshold, ThresholdPolicy
from evalkit.judges.section import JudgesSection, failures_exceeded, judge_metric_not_counted
from evalkit.record.results import comparison_section, sweep_pick
from evalkit.slices.compare import sliced_values
from evalkit.stages import register_stage
from evalkit.usage.stage import USAGE_METRICS, usage_bar

__all__ = [
    "DEFAULT_INCONCLUSIVE", "OPERATORS", "WORST_ITEMS", "BarKind", "BarResult", "BarSpec", "BarStatus",
    "InconclusivePolicy", "ItemEvidence", "Operator", "SuiteBar", "bar_blocks", "bars_stage", "bars_summary",
    "evaluate_bar", "evaluate_bars", "failed_gates", "mean_interval", "parse_bar_expression", "record_bars",
    "run_comparison",
]

if TYPE_CHECKING:
    from evalkit.comparison.compare import Comparison, MetricComparison
    from evalkit.models.backend import Backend
    from evalkit.progress import Progress
    from evalkit.record.results import CandidateResult, RunResult
    from evalkit.stages import SuiteInputs
    from evalkit.suite.config import SuiteConfig

_STATUS_OF_VERDICT: dict[str, BarStatus] = {
    "regressed": "failed", "improved": "passed", "no_change": "passed", "inconclusive": "inconclusive",
}


WORST_ITEMS = 5
"""How many failing items a bar's explanation shows."""


class _BarContext:
    """What evaluating bars reads: the run, the comparison, the judges' calibration."""

    def __init__(self, run: RunResult, comparison: Comparison | None) -> None:
        self.run = run
        self.comparison = comparison
        # Read once per bar: a no-regression bar asks about every metric, and the section
        # holds every judged item's transcript.
        self.judges: JudgesSection = run.section("judges") or {}

    def candidate(self, name: str) -> CandidateResult | None:
        try:
            return self.run.candidate(name)
        except KeyError:
            return None

    def metric_comparison(self, candidate: str, metric: str) -> MetricComparison | None:
        if self.comparison is None or candidate not in self.comparison.candidates:
            return None
        return self.comparison.candidates[candidate].metrics.get(metric)

    def judge_not_counted(self, metric: str) -> str | None:
        """Return why a judge metric's bar is not counted (uncalibrated or inconsistent judge), or None."""
        return judge_metric_not_counted(self.judges, metric)


def _worst_items(
    candidate: CandidateResult, metric: str, failing: Callable[[float], bool],
    baseline_values: Mapping[str, float] | None = None,
    sign: float = 1.0,
) -> list[ItemEvidence]:
    """Return the items whose own value fails, worst first (lowest value or largest drop).

    ``sign`` is -1 for a metric whose lower values are better: the largest rise is the worst.
    """
    values = candidate.values(metric)
    by_id = {item.item_id: item for item in candidate.items}
    evidence: list[tuple[float, ItemEvidence]] = []
    for item_id, value in values.items():
        base = baseline_values.get(item_id) if baseline_values is not None else None
        if not failing(value) if base is None else not failing(value - base):
            continue
        item = by_id.get(item_id)
        score = item.scores.get(metric) if item is not None else None
        evidence.append((
            value - base if base is not None else value,
            ItemEvidence(item_id=item_id, value=value, baseline_value=base,
                         reason=score.reason if score is not None else "",
                         prediction=item.prediction if item is not None else ""),
        ))
    evidence.sort(key=lambda pair: sign * pair[0])
    return [e for _, e in evidence[:WORST_ITEMS]]


def _unmeasurable(bar: BarSpec, ctx: _BarContext) -> BarResult | None:
    """Return a failed result when the bar cannot be evaluated on this run, else None."""
    result = ctx.candidate(bar.candidate)
    if result is None:
        return BarResult.of(bar, "failed", None,
                            f"candidate '{bar.candidate}' was not part of this run; run it (drop --candidate)")
    if result.status != "ok":
        # Only a candidate the suite or the command lets be missing gets here (planning
        # refuses any other): its bars cannot count, and they never read as passed.
        return BarResult.of(bar, "not_counted", None,
                            f"candidate '{bar.candidate}' was not evaluated: {result.message}")
    if bar.compares_to_baseline:
        baseline = ctx.candidate(ctx.run.baseline)
        if baseline is None or baseline.status != "ok":
            why = baseline.message if baseline is not None else "it was not part of this run"
            return BarResult.of(bar, "inconclusive", None,
                                f"baseline '{ctx.run.baseline}' was not evaluated, so nothing decides this bar: {why}")
    if bar.metric is not None and not sliced_values(ctx.run, result, bar.metric):
        measured = ", ".join(result.metric_names()) or "nothing"
        return BarResult.of(bar, "failed", None,
                            f"'{bar.metric}' was not measured for '{bar.candidate}'; measured: {measured}")
    return None


def _threshold_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    assert bar.metric is not None and bar.op is not None and bar.value is not None
    candidate = ctx.run.candidate(bar.candidate)
    values = list(sliced_values(ctx.run, candidate, bar.metric).values())
    mean = sum(values) / len(values)
    check = OPERATORS[bar.op]
    met = check(mean, bar.value)
    result = BarResult.of(bar, "passed" if met else "failed", mean, "", interval=mean_interval(values),
                          n_items=len(values))
    gap = "" if met or bar.op in ("==", "!=") else f" (short by {format_value(abs(mean - bar.value))})"
    result.message = (
        f"{bar.metric} = {format_value(mean)}, "
        f"{'meets' if met else 'needs'} {bar.op} {format_value(bar.value)}{gap}"
    )
    if bar.candidate != ctx.run.baseline:
        result.baseline = ctx.run.baseline
        baseline = ctx.candidate(ctx.run.baseline)
        base_values = list(sliced_values(ctx.run, baseline, bar.metric).values()) if baseline is not None else []
        result.baseline_value = sum(base_values) / len(base_values) if base_values else None
        _add_comparison_detail(result, ctx.metric_comparison(bar.candidate, bar.metric))
    if not met:
        value = bar.value
        result.worst_items = _worst_items(candidate, bar.metric, lambda v: not check(v, value))
    return result


def _add_comparison_detail(result: BarResult, comparison: MetricComparison | None) -> None:
    if comparison is not None:
        result.details.append(
            f"vs baseline: delta {comparison.delta:+.3f}, {comparison.test} test, "
            f"verdict {comparison.verdict}: {comparison.explain()}"
        )


def _bar_comparison(bar: BarSpec, ctx: _BarContext) -> MetricComparison | None:
    """Compare the bar's metric under the bar's own threshold (same pairing and seed as the run's)."""
    from evalkit.comparison.compare import (  # numpy: loaded when a bar compares
        compare_pair,
        declared_directions,
        declared_kinds,
    )

    assert bar.metric is not None and bar.max_drop is not None
    candidate, baseline = ctx.run.candidate(bar.candidate), ctx.run.candidate(ctx.run.baseline)
    seed = ctx.comparison.seed if ctx.comparison is not None else 0
    fresh = compare_pair(baseline, candidate, ThresholdPolicy(default=bar.max_drop), seed,
                         metrics=[bar.metric], kinds=declared_kinds(ctx.run),
                         directions=declared_directions(ctx.run)).metrics.get(bar.metric)
    if fresh is not None:
        return fresh
    # Per-item values gone (a run read back from its files): the stored comparison, when
    # it used the bar's threshold, is the same computation.
    stored = ctx.metric_comparison(bar.candidate, bar.metric)
    if stored is not None and Threshold.parse(stored.threshold) == Threshold.parse(bar.max_drop):
        return stored
    return None


def _max_drop_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    assert bar.metric is not None and bar.max_drop is not None
    compared = _bar_comparison(bar, ctx)
    if compared is None:
        return BarResult.of(bar, "inconclusive", None, f"'{bar.metric}' shares no paired items between "
                            f"'{bar.candidate}' and the baseline '{ctx.run.baseline}', so nothing decides the bar",
                            baseline=ctx.run.baseline)
    status = _STATUS_OF_VERDICT[compared.verdict]
    base_value, cand_value = compared.baseline_value, compared.candidate_value
    drop = base_value - cand_value
    relative = f", {-drop / base_value:+.1%} relative" if base_value else ""
    relative += "" if compared.higher_is_better else ", lower is better"
    found = {"failed": f"beyond the allowed {bar.max_drop}", "passed": f"within the allowed {bar.max_drop}",
             "inconclusive": f"undecided against the allowed {bar.max_drop}"}[status]
    result = BarResult.of(
        bar, status, cand_value,
        f"{bar.metric} went {format_value(base_value)} -> {format_value(cand_value)} ({-drop:+.3f}{relative}): "
        f"{found}; {compared.explain()}",
        interval=(compared.ci_low, compared.ci_high), baseline=ctx.run.baseline, baseline_value=base_value,
        n_items=compared.n_items, items_needed=compared.items_needed,
    )
    result.details.append("interval: 95% CI of the paired delta (candidate - baseline)")
    _add_comparison_detail(result, compared)
    if status != "passed":
        sign = 1.0 if compared.higher_is_better else -1.0
        result.worst_items = _worst_items(ctx.run.candidate(bar.candidate), bar.metric,
                                          lambda delta: sign * delta < 0,
                                          ctx.run.candidate(ctx.run.baseline).values(bar.metric), sign)
    return result


def _no_regression_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    if ctx.comparison is None or bar.candidate not in ctx.comparison.candidates:
        return BarResult.of(bar, "inconclusive", None,
                            f"no comparison of '{bar.candidate}' with the baseline '{ctx.run.baseline}' in this run, "
                            "so nothing decides the bar")
    compared = ctx.comparison.candidates[bar.candidate].metrics
    if bar.metric is not None:
        if bar.metric not in compared:
            return BarResult.of(bar, "inconclusive", None,
                                f"'{bar.metric}' was not compared; compared: {', '.join(compared) or 'nothing'}")
        compared = {bar.metric: compared[bar.metric]}
    # An uncalibrated or inconsistent judge's scores decide nothing, this bar included.
    left_out = [name for name in compared if ctx.judge_not_counted(name) is not None]
    compared = {name: m for name, m in compared.items() if name not in left_out}
    regressed = [m for m in compared.values() if m.verdict == "regressed"]
    undecided = [m for m in compared.values() if m.verdict == "inconclusive"]
    focus = regressed[0] if regressed else undecided[0] if undecided else (
        compared[bar.metric] if bar.metric is not None else None)
    status: BarStatus
    if regressed:
        status, names = "failed", ", ".join(m.metric for m in regressed)
        message = f"regression beyond the allowed drop on {names} against '{ctx.run.baseline}'"
    elif undecided:
        status = "inconclusive"
        message = (f"the data cannot rule out a regression beyond the allowed drop on "
                   f"{', '.join(m.metric for m in undecided)} against '{ctx.run.baseline}'")
    else:
        status = "passed"
        message = f"no regression beyond the allowed drop on {len(compared)} compared metric(s)"
    if left_out:
        message += f" ({', '.join(left_out)} left out: their judge's scores do not count)"
    result = BarResult.of(bar, status, None, message, baseline=ctx.run.baseline)
    needed = [m.items_needed for m in undecided if m.items_needed]
    result.items_needed = max(needed) if needed else None
    if focus is not None:
        result.value, result.baseline_value = focus.candidate_value, focus.baseline_value
        result.interval, result.n_items = (focus.ci_low, focus.ci_high), focus.n_items
        result.details.append(f"interval: 95% CI of the paired delta on {focus.metric}")
    for metric in compared.values():
        if bar.metric is not None or metric.verdict in ("regressed", "inconclusive"):
            _add_comparison_detail(result, metric)
            result.details[-1] = f"{metric.metric}: {result.details[-1]}"
    if focus is not None and (regressed or undecided):
        candidate = ctx.run.candidate(bar.candidate)
        sign = 1.0 if focus.higher_is_better else -1.0
        result.worst_items = _worst_items(candidate, focus.metric, lambda delta: sign * delta < 0,
                                          ctx.run.candidate(ctx.run.baseline).values(focus.metric), sign)
    return result


def evaluate_bar(bar: BarSpec, run: RunResult, comparison: Comparison | None = None) -> BarResult:
    """Check one bar against a run.

    Args:
        bar: the bar.
        run: the run's result.
        comparison: the run's comparison with its baseline; needed by ``max_drop``
            intervals and by ``no significant regression``.

    Returns:
        The bar's result. A bar whose metric was not measured fails and says why; one
        whose baseline or comparison is missing is inconclusive; one whose candidate the
        suite let be missing is not counted.
    """
    is_sweep, picked, pick_reason = sweep_pick(run.sections, bar.candidate)
    if is_sweep:
        if picked is None:
            return BarResult.of(bar, "failed", None, f"the sweep '{bar.candidate}' picked no checkpoint: {pick_reason}")
        bar = bar.model_copy(update={"candidate": picked})
    if bar.metric in USAGE_METRICS:
        return usage_bar(bar, run)
    ctx = _BarContext(run, comparison)
    if (unmeasurable := _unmeasurable(bar, ctx)) is not None:
        return unmeasurable
    if bar.kind == "threshold":
        result = _threshold_result(bar, ctx)
    elif bar.kind == "max_drop":
        result = _max_drop_result(bar, ctx)
    else:
        result = _no_regression_result(bar, ctx)
    if bar.metric is not None and (why := ctx.judge_not_counted(bar.metric)) is not None:
        result.status = "not_counted"
        result.details.insert(0, why)
    sides = [bar.candidate, run.baseline] if bar.compares_to_baseline else [bar.candidate]
    if bar.metric is not None and (failed := failures_exceeded(ctx.judges, bar.metric, sides)) is not None:
        result.status, result.message = "failed", f"{failed}; {result.message}"
    return result


def run_comparison(run: RunResult, suite: SuiteConfig | None = None) -> Comparison:
    """Return the run's comparison: the stored ``comparison`` section, else computed now."""
    stored = comparison_section(run.sections)
    if stored is not None:
        return stored
    # numpy (via compare): loaded only when this compares
    from evalkit.comparison.compare import compare_candidates

    return compare_candidates(run, suite)


def evaluate_bars(
    bars: Sequence[BarSpec], run: RunResult, comparison: Comparison | None = None,
    suite: SuiteConfig | None = None,
) -> list[BarResult]:
    """Check every bar against a run, in order.

    Args:
        bars: the bars (usually ``suite.bars``).
        run: the run's result.
        comparison: its comparison; default :func:`run_comparison` when a bar needs it.
        suite: the suite, for computing a comparison the run lacks and for its
            ``inconclusive:`` choice (default ``fail``).
    """
    needs_comparison = "comparison" in run.sections or any(bar.compares_to_baseline for bar in bars)
    if comparison is None and needs_comparison:
        comparison = run_comparison(run, suite)
    policy: InconclusivePolicy = getattr(suite, "inconclusive", DEFAULT_INCONCLUSIVE) or DEFAULT_INCONCLUSIVE
    results = [evaluate_bar(bar, run, comparison) for bar in bars]
    for result in results:
        result.inconclusive_policy = policy
    return results


def record_bars(suite: SuiteConfig, run: RunResult) -> list[BarResult]:
    """Check the suite's bars against its run and store them in ``run.sections["bars"]``.

    Bars of candidates left out of the run on purpose (``--candidate``) are not checked.

    Returns:
        The results; the section is left out when no bar applies.
    """
    in_run = {candidate.name for candidate in run.candidates}
    in_run |= {bar.candidate for bar in suite.bars if sweep_pick(run.sections, bar.candidate)[0]}  # on its pick
    bars = [bar for bar in suite.bars if bar.candidate in in_run]
    if not bars:
        return []
    results = evaluate_bars(bars, run, suite=suite)
    run.set_section("bars", results)
    return results


@register_stage("bars", final=True)
def bars_stage(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Run stage, after the comparison: check the suite's bars against the run (:func:`record_bars`)."""
    del backends, progress
    record_bars(inputs.suite, run)


def bars_summary(results: Sequence[BarResult]) -> str:
    """Return ``N bars: P passed, F failed[, I inconclusive][, U not counted]``."""
    counts = {status: sum(r.status == status for r in results)
              for status in ("passed", "failed", "inconclusive", "not_counted")}
    text = f"{len(results)} bars: {counts['passed']} passed, {counts['failed']} failed"
    text += f", {counts['inconclusive']} inconclusive" if counts["inconclusive"] else ""
    return text + (f", {counts['not_counted']} not counted" if counts["not_counted"] else "")


def failed_gates(run: RunResult) -> list[str]:
    """Return one line per blocking bar and per regressed metric of the run (empty: the run passes).

    This is what makes ``evalkit run`` exit 1 (:func:`evalkit.bars.verdict.run_verdict`).
    """
    return run_verdict(run).failures
