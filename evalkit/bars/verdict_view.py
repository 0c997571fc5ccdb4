"""The verdict banner and the candidates × metrics table.

Both read the run's ``comparison`` and ``bars`` sections, typed
(:mod:`evalkit.sections`), when present. Without a comparison the table
still shows each candidate's means and their plain difference from the baseline, and
the banner says that no verdict was computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from evalkit.bars.result import BarRecord
from evalkit.benchmarks.section import BENCHMARKS, BenchmarksSection
from evalkit.comparison.result import MetricComparison
from evalkit.judges.counted import judge_metric_not_counted
from evalkit.record.results import RunResult
from evalkit.record.run_sections import compared_baseline, comparison_section, parse_section
from evalkit.report.metric_format import (
    format_delta,
    format_interval,
    format_p,
    format_value,
    is_field_metric,
    is_judge_metric,
    significance_marker,
)

VerdictStatus = Literal["deployable", "blocked", "undecided", "no_bars", "not_evaluated", "baseline", "unknown"]
STATUS_BADGES: dict[str, str] = {
    "deployable": "DEPLOYABLE", "blocked": "NOT DEPLOYABLE", "undecided": "UNDECIDED", "no_bars": "NO BARS",
    "not_evaluated": "NOT EVALUATED", "baseline": "BASELINE", "unknown": "NO VERDICT",
}
"""The badge each card status shows; only ``deployable`` is green."""


@dataclass
class MetricCell:
    """One candidate's entry for one metric.

    Attributes:
        value: the formatted value.
        delta: the formatted delta against the baseline ("" for the baseline).
        interval: the formatted 95% interval on the delta ("" when not computed).
        marker: significance stars.
        verdict: improved / regressed / no_change / inconclusive / "" (CSS class too).
        detail: a tooltip with the test, p-value, threshold and n.
    """

    value: str
    delta: str = ""
    interval: str = ""
    marker: str = ""
    verdict: str = ""
    detail: str = ""


@dataclass
class MetricRow:
    """One metric across candidates (baseline first)."""

    metric: str
    cells: dict[str, MetricCell]


@dataclass
class CandidateVerdict:
    """What the banner says about one candidate.

    Attributes:
        candidate: its name.
        status: one of :data:`evalkit.bars.verdict.CandidateStatus` (deployable, blocked,
            undecided, no_bars, not_evaluated, baseline), or unknown (no comparison).
        reasons: the regressions and unmet bars that block it, each with its size.
        improvements: significant improvements (metric and delta).
        inconclusive: metrics the data cannot decide yet, with the items needed.
        note: why there is no verdict, or why the candidate was not evaluated.
        badge: the status as the card shows it.
    """

    candidate: str
    status: VerdictStatus
    reasons: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def badge(self) -> str:
        """The status as the card shows it (``NO BARS``, ``UNDECIDED`` ...)."""
        return STATUS_BADGES[self.status]


@dataclass
class VerdictView:
    """The banner: an overall answer and one card per non-baseline candidate."""

    status: VerdictStatus
    headline: str
    candidates: list[CandidateVerdict]
    baseline: str
    cannot_decide: list[str] = field(default_factory=list)
    """Metrics whose set is too small to decide their threshold (:func:`undecidable_lines`), shown first."""


def comparison_metrics(run: RunResult) -> dict[str, dict[str, MetricComparison]]:
    """Return candidate -> metric -> its comparison, from the comparison section (empty without one)."""
    comparison = comparison_section(run.sections)
    if comparison is None:
        return {}
    return {name: dict(entry.metrics) for name, entry in comparison.candidates.items()}


def item_means(run: RunResult) -> dict[str, dict[str, float]]:
    """Return candidate -> metric -> mean over items (one pass over each candidate's items)."""
    # numpy (via compare): loaded only when this compares
    from evalkit.comparison.compare import metric_values

    means: dict[str, dict[str, float]] = {}
    for candidate in run.candidates:
        if candidate.status == "ok":
            means[candidate.name] = {metric: sum(values.values()) / len(values)
                                     for metric, values in metric_values(candidate).items() if values}
    return means


def candidate_means(run: RunResult, item_level: Mapping[str, Mapping[str, float]] | None = None
                    ) -> dict[str, dict[str, float]]:
    """Return candidate -> metric -> value, from items, benchmark sections and the comparison.

    Args:
        run: the run.
        item_level: :func:`item_means` of the run, when already computed.
    """
    means = {name: dict(values) for name, values in (item_level or item_means(run)).items()}
    for name, tasks in _benchmarks(run).items():
        for task, result in tasks.items():
            means.setdefault(name, {}).setdefault(task, result.acc)
    for name, metrics in comparison_metrics(run).items():
        baseline = baseline_of(run, name)
        for metric, mc in metrics.items():
            means.setdefault(name, {}).setdefault(metric, mc.candidate_value)
            means.setdefault(baseline, {}).setdefault(metric, mc.baseline_value)
    return means


def _benchmarks(run: RunResult) -> BenchmarksSection:
    return parse_section(BenchmarksSection, run.sections.get(BENCHMARKS) or {},
                         f"run {run.run_id}: sections.{BENCHMARKS}")


def ordered_metrics(run: RunResult, means: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Return every metric: task checks, then per-field accuracy, judges, benchmarks."""
    seen: dict[str, None] = {}
    for metrics in means.values():
        seen.update(dict.fromkeys(metrics))
    benchmark_tasks = {task for tasks in _benchmarks(run).values() for task in tasks}

    def group(metric: str) -> int:
        if metric in benchmark_tasks:
            return 3
        if is_judge_metric(metric):
            return 2
        return 1 if is_field_metric(metric) else 0

    names = list(seen)
    return sorted(names, key=lambda m: (group(m), names.index(m)))


def _cell(metric: str, mc: MetricComparison | None, value: float | None,
          baseline_value: float | None) -> MetricCell:
    if mc is None:
        delta = None if value is None or baseline_value is None else value - baseline_value
        return MetricCell(value=format_value(metric, value), delta=format_delta(metric, delta))
    # A lower-is-better metric (bits per byte) is a measurement in its own units, not a share.
    share = mc.higher_is_better
    allowed = f"allowed drop {mc.threshold}" if share else f"allowed rise {mc.threshold} (lower is better)"
    parts = [f"{mc.test} {format_p(mc.p_value)}".strip(), f"n = {mc.n_items}", allowed]
    if mc.items_needed:
        parts.append(f"about {mc.items_needed} items needed to decide")
    if mc.undecidable:
        parts.append(mc.decidability())
    return MetricCell(
        value=format_value(metric, mc.candidate_value, share),
        delta=format_delta(metric, mc.delta, share),
        interval=format_interval(metric, mc.ci_low, mc.ci_high, share),
        marker=significance_marker(mc.p_value),
        verdict=mc.verdict,
        detail="; ".join(p for p in parts if p),
    )


def metric_rows(run: RunResult, means: Mapping[str, Mapping[str, float]],
                include: Callable[[str], bool] | None = None) -> list[MetricRow]:
    """Return the table rows: one per metric, one cell per evaluated candidate.

    Args:
        run: the run.
        means: :func:`candidate_means` of the run.
        include: a predicate on metric names choosing the rows (default: every metric).
    """
    compared = comparison_metrics(run)
    names = table_candidates(run)
    rows = []
    for metric in ordered_metrics(run, means):
        if include is not None and not include(metric):
            continue
        cells = {}
        for name in names:
            value = means.get(name, {}).get(metric)
            own_baseline = baseline_of(run, name)
            if name == own_baseline or (compared and name not in compared):
                cells[name] = MetricCell(value=format_value(metric, value))
            else:
                base_value = means.get(own_baseline, {}).get(metric)
                cells[name] = _cell(metric, compared.get(name, {}).get(metric), value, base_value)
        rows.append(MetricRow(metric=metric, cells=cells))
    return rows


def table_candidates(run: RunResult) -> list[str]:
    """Return the candidates that have values, baseline first."""
    baseline = compared_baseline(run.sections, run.baseline)
    names = [c.name for c in run.candidates if c.status == "ok"]
    for name in comparison_metrics(run):
        if name not in names:
            names.append(name)
    if baseline not in names:
        return names
    names.remove(baseline)
    return [baseline, *names]


def _metric_sentence(metric: str, mc: MetricComparison) -> str:
    """Return ``metric −4.1 pt, 95% CI [−6.2, −1.9], p < 0.001, allowed drop 3%``."""
    share = mc.higher_is_better  # a lower-is-better metric is a measurement in its own units
    interval = format_interval(metric, mc.ci_low, mc.ci_high, share)
    allowed = f"allowed {'drop' if share else 'rise (lower is better)'} {mc.threshold}" if mc.threshold else ""
    parts = [f"{metric} {format_delta(metric, mc.delta, share)}",
             f"95% CI {interval}" if interval else "", format_p(mc.p_value), allowed]
    return ", ".join(p for p in parts if p)


def _metric_short(metric: str, mc: MetricComparison) -> str:
    return f"{metric} {format_delta(metric, mc.delta, mc.higher_is_better)}"


def undecidable_lines(compared: Mapping[str, Mapping[str, MetricComparison]]) -> list[str]:
    """Return one line per metric whose paired items cannot detect a drop of its threshold's size.

    Shown above the verdict, so nobody reads an inconclusive on such a metric as evidence
    (only metrics the comparison left inconclusive are listed):
    ``mmlu_mini (lora): 570 paired items cannot decide 3% ...``.
    """
    lines: dict[str, str] = {}
    for candidate, metrics in compared.items():
        for metric, mc in metrics.items():
            # A metric the data decided anyway (a change far larger than the detectable
            # drop, or a baseline at 0 that cannot drop) needs no warning.
            if mc.undecidable and mc.verdict == "inconclusive" and metric not in lines:
                lines[metric] = f"{metric} ({candidate}): {mc.decidability()}"
    return list(lines.values())


def baseline_of(run: RunResult, candidate: str) -> str:
    """Return the candidate a candidate is compared with (its own, when two runs are compared)."""
    comparison = comparison_section(run.sections)
    if comparison is None:
        return run.baseline
    entry = comparison.candidates.get(candidate)
    return (entry.baseline if entry is not None else "") or compared_baseline(run.sections, run.baseline)


def baseline_label(run: RunResult) -> str:
    """Return how the banner names the baseline (a candidate, or the earlier run)."""
    comparison = comparison_section(run.sections)
    if comparison is None:
        return run.baseline
    if not comparison.baseline and comparison.baseline_run_id:
        return f"run {comparison.baseline_run_id}"
    return compared_baseline(run.sections, run.baseline)


def _bar_reason(bar: BarRecord) -> str:
    return f"bar unmet: {bar.expression}" + (f" — {bar.message}" if bar.message else "")


def _undecided_bar(bar: BarRecord) -> str:
    needed = bar.items_needed
    text = f"bar undecided: {bar.expression}" + (f" (~{needed:,} items)" if needed else "")
    return text + (" — not gating (inconclusive: warn)" if bar.inconclusive_policy == "warn" else "")


def build_verdict(run: RunResult) -> VerdictView:
    """Return the verdict banner's content, from :func:`evalkit.bars.verdict.run_verdict`.

    A candidate is deployable only when it has counted bars and every one passed; a
    failed bar or a regressed metric blocks it; a bar the data cannot decide leaves it
    undecided; without bars it gets "no bars", never a green badge. The baseline has
    its own neutral card.
    """
    from evalkit.bars.verdict import run_verdict

    comparison = comparison_section(run.sections)
    compared = comparison_metrics(run)
    baseline = baseline_label(run)
    gates = {gate.name: gate for gate in run_verdict(run).candidates}
    own_baseline = comparison.baseline if comparison is not None else run.baseline
    order = [c.name for c in run.candidates] + [name for name in compared if name not in gates]
    names = [n for n in dict.fromkeys(order) if n in compared or n in gates]
    if own_baseline in names:  # the baseline's card first
        names = [own_baseline] + [n for n in names if n != own_baseline]
    elif comparison is not None:
        names = [n for n in names if n in compared or gates[n].status == "not_evaluated"]
    cards: list[CandidateVerdict] = []
    for name in names:
        gate = gates.get(name)
        if gate is not None and gate.status == "not_evaluated":
            cards.append(CandidateVerdict(name, "not_evaluated", note=f"not evaluated: {gate.note}"))
            continue
        metrics = compared.get(name)
        status: VerdictStatus = gate.status if gate is not None else "no_bars"
        if name != own_baseline and metrics is None and comparison is None and status == "no_bars":
            status = "unknown"
        card = CandidateVerdict(name, status)
        uncounted: list[str] = []
        for metric, mc in (metrics or {}).items():
            verdict = mc.verdict
            if verdict in ("regressed", "inconclusive") and judge_metric_not_counted(run.sections, metric):
                uncounted.append(metric)  # the verdict ignores it too: say so instead of listing it as open
            elif verdict == "regressed":
                card.reasons.append(_metric_sentence(metric, mc))
            elif verdict == "improved":
                card.improvements.append(_metric_short(metric, mc))
            elif verdict == "inconclusive":
                needed = mc.items_needed
                card.inconclusive.append(f"{metric}" + (f" (~{needed:,} items)" if needed else ""))
        if gate is not None:
            card.reasons += [_bar_reason(bar) for bar in gate.failed]
            card.inconclusive[:0] = [_undecided_bar(bar) for bar in gate.undecided]
            card.inconclusive += [f"bar not counted: {bar.expression}" for bar in gate.not_counted]
        if uncounted:
            card.inconclusive.append(f"not counted (the judge's scores do not count): {', '.join(uncounted)}")
        if status == "unknown":
            card.note = "no comparison against the baseline in this run"
        elif status == "no_bars":
            card.note = "no bars: nothing this candidate must meet was set (add bars to gate it)"
        elif status == "baseline":
            card.note = "the baseline: the others are compared with it"
        cards.append(card)
    return VerdictView(*_overall(cards, baseline), candidates=cards, baseline=baseline,
                       cannot_decide=undecidable_lines(compared))


def _overall(cards: list[CandidateVerdict], baseline: str) -> tuple[VerdictStatus, str]:
    blocked = [c.candidate for c in cards if c.status == "blocked"]
    undecided = [c for c in cards if c.status == "undecided"]
    decided = [c.candidate for c in cards if c.status == "deployable"]
    others = [c for c in cards if c.status != "baseline"]
    if blocked:
        reasons = [r for c in cards if c.status == "blocked" for r in c.reasons]
        bars = sum(r.startswith("bar unmet") for r in reasons)
        counts = [f"{len(reasons) - bars} regression{'s' * (len(reasons) - bars != 1)} against {baseline}"
                  if len(reasons) > bars else "", f"{bars} unmet bar{'s' * (bars != 1)}" if bars else ""]
        return "blocked", f"Do not deploy {', '.join(blocked)}: {' and '.join(c for c in counts if c)}"
    if undecided:
        count = sum(i.startswith("bar undecided") for c in undecided for i in c.inconclusive)
        names = ", ".join(c.candidate for c in undecided)
        gating = any(i.startswith("bar undecided") and not i.endswith("(inconclusive: warn)")
                     for c in undecided for i in c.inconclusive)
        what = f"{count} bar{'s' * (count != 1)} the data cannot decide"
        if gating:
            return "undecided", f"Not deployable yet: {names} — {what}; more items would decide"
        return "undecided", f"Undecided: {names} — {what} (not gating: inconclusive: warn)"
    if decided:
        return "deployable", f"Deployable: {', '.join(decided)} — every bar met, no regression against {baseline}"
    if not others:
        return "unknown", f"No verdict: only the baseline ({baseline}) was evaluated"
    if all(c.status == "not_evaluated" for c in others):
        return "unknown", "No verdict: every candidate besides the baseline was not evaluated"
    if any(c.status == "no_bars" for c in others):
        names = ", ".join(c.candidate for c in others if c.status == "no_bars")
        return "no_bars", f"No bars: {names} — nothing to gate on; no regression against {baseline}"
    return "unknown", "No verdict: this run has no comparison against the baseline"
