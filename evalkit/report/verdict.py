"""The verdict banner and the candidates × metrics table.

Both read the run's ``comparison`` section (``Comparison.to_dict()``, see
evalkit/compare.py) and ``bars`` section when present. Without a comparison the table
still shows each candidate's means and their plain difference from the baseline, and
the banner says that no verdict was computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from evalkit.report.metric_format import (
    format_delta,
    format_interval,
    format_p,
    format_value,
    is_field_metric,
    is_judge_metric,
    significance_marker,
)
from evalkit.results import RunResult

VerdictStatus = Literal["deployable", "blocked", "skipped", "unknown"]


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
        status: deployable, blocked (a regression or an unmet bar), skipped, or unknown.
        reasons: the regressions and unmet bars that block it, each with its size.
        improvements: significant improvements (metric and delta).
        inconclusive: metrics the data cannot decide yet, with the items needed.
        note: why there is no verdict, or the skip reason.
    """

    candidate: str
    status: VerdictStatus
    reasons: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class VerdictView:
    """The banner: an overall answer and one card per non-baseline candidate."""

    status: VerdictStatus
    headline: str
    candidates: list[CandidateVerdict]
    baseline: str


def comparison_metrics(run: RunResult) -> dict[str, dict[str, dict[str, Any]]]:
    """Return candidate -> metric -> MetricComparison dict from the comparison section."""
    comparison = run.sections.get("comparison") or {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in (comparison.get("candidates") or {}).items():
        out[name] = dict(entry.get("metrics") or {})
    return out


def item_means(run: RunResult) -> dict[str, dict[str, float]]:
    """Return candidate -> metric -> mean over items (one pass over each candidate's items)."""
    from evalkit.compare import metric_values

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
    for name, tasks in (run.sections.get("benchmarks") or {}).items():
        for task, result in tasks.items():
            if isinstance(result, Mapping) and "acc" in result:
                means.setdefault(name, {}).setdefault(task, float(result["acc"]))
    for name, metrics in comparison_metrics(run).items():
        baseline = baseline_of(run, name)
        for metric, mc in metrics.items():
            if mc.get("candidate_value") is not None:
                means.setdefault(name, {}).setdefault(metric, float(mc["candidate_value"]))
            if mc.get("baseline_value") is not None:
                means.setdefault(baseline, {}).setdefault(metric, float(mc["baseline_value"]))
    return means


def ordered_metrics(run: RunResult, means: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Return every metric: task checks, then per-field accuracy, judges, benchmarks."""
    seen: dict[str, None] = {}
    for metrics in means.values():
        seen.update(dict.fromkeys(metrics))
    benchmark_tasks = {task for tasks in (run.sections.get("benchmarks") or {}).values() for task in tasks}

    def group(metric: str) -> int:
        if metric in benchmark_tasks:
            return 3
        if is_judge_metric(metric):
            return 2
        return 1 if is_field_metric(metric) else 0

    names = list(seen)
    return sorted(names, key=lambda m: (group(m), names.index(m)))


def _cell(metric: str, mc: Mapping[str, Any] | None, value: float | None,
          baseline_value: float | None) -> MetricCell:
    if mc is None:
        delta = None if value is None or baseline_value is None else value - baseline_value
        return MetricCell(value=format_value(metric, value), delta=format_delta(metric, delta))
    parts = [f"{mc.get('test', '')} {format_p(mc.get('p_value'))}".strip(),
             f"n = {mc.get('n_items')}", f"allowed drop {mc.get('threshold')}"]
    if mc.get("items_needed"):
        parts.append(f"about {mc['items_needed']} items needed to decide")
    return MetricCell(
        value=format_value(metric, mc.get("candidate_value", value)),
        delta=format_delta(metric, mc.get("delta")),
        interval=format_interval(metric, mc.get("ci_low"), mc.get("ci_high")),
        marker=significance_marker(mc.get("p_value")),
        verdict=str(mc.get("verdict", "")),
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
    baseline = (run.sections.get("comparison") or {}).get("baseline") or run.baseline
    names = [c.name for c in run.candidates if c.status == "ok"]
    for name in comparison_metrics(run):
        if name not in names:
            names.append(name)
    if baseline not in names:
        return names
    names.remove(baseline)
    return [baseline, *names]


def _metric_sentence(metric: str, mc: Mapping[str, Any]) -> str:
    """Return ``metric −4.1 pt, 95% CI [−6.2, −1.9], p < 0.001, allowed drop 3%``."""
    interval = format_interval(metric, mc.get("ci_low"), mc.get("ci_high"))
    parts = [f"{metric} {format_delta(metric, mc.get('delta'))}",
             f"95% CI {interval}" if interval else "", format_p(mc.get("p_value")),
             f"allowed drop {mc['threshold']}" if mc.get("threshold") else ""]
    return ", ".join(p for p in parts if p)


def _metric_short(metric: str, mc: Mapping[str, Any]) -> str:
    return f"{metric} {format_delta(metric, mc.get('delta'))}"


def baseline_of(run: RunResult, candidate: str) -> str:
    """Return the candidate a candidate is compared with (its own, when two runs are compared)."""
    comparison = run.sections.get("comparison") or {}
    entry = (comparison.get("candidates") or {}).get(candidate) or {}
    return str(entry.get("baseline") or comparison.get("baseline") or run.baseline)


def baseline_label(run: RunResult) -> str:
    """Return how the banner names the baseline (a candidate, or the earlier run)."""
    comparison = run.sections.get("comparison") or {}
    if comparison and not comparison.get("baseline") and comparison.get("baseline_run_id"):
        return f"run {comparison['baseline_run_id']}"
    return str(comparison.get("baseline") or run.baseline)


def _bar_reason(bar: Mapping[str, Any]) -> str:
    message = str(bar.get("message") or "")
    return f"bar unmet: {bar.get('expression', '')}" + (f" — {message}" if message else "")


def build_verdict(run: RunResult) -> VerdictView:
    """Return the verdict banner's content.

    A candidate is blocked by a regressed metric or a failed bar; a bar that was not
    counted (an uncalibrated judge) is shown but does not block, as in evalkit.bars.
    """
    comparison = run.sections.get("comparison")
    compared = comparison_metrics(run)
    baseline = baseline_label(run)
    bars = [b for b in run.sections.get("bars") or [] if isinstance(b, Mapping)]
    baselines = {baseline_of(run, name) for name in compared} | {str((comparison or {}).get("baseline") or "")}
    if comparison:
        names = list(compared)
        names += [c.name for c in run.candidates if c.status == "skipped" and c.name not in baselines]
    else:
        names = [c.name for c in run.candidates if c.name != run.baseline]
    statuses = {c.name: c for c in run.candidates}
    cards: list[CandidateVerdict] = []
    for name in names:
        result = statuses.get(name)
        if result is not None and result.status == "skipped":
            cards.append(CandidateVerdict(name, "skipped", note=result.message))
            continue
        metrics = compared.get(name)
        card = CandidateVerdict(name, "unknown" if metrics is None else "deployable")
        for metric, mc in (metrics or {}).items():
            verdict = mc.get("verdict")
            if verdict == "regressed":
                card.reasons.append(_metric_sentence(metric, mc))
            elif verdict == "improved":
                card.improvements.append(_metric_short(metric, mc))
            elif verdict == "inconclusive":
                needed = mc.get("items_needed")
                card.inconclusive.append(f"{metric}" + (f" (~{needed:,} items)" if needed else ""))
        for bar in bars:
            if bar.get("candidate") != name:
                continue
            status = bar.get("status") or ("passed" if bar.get("passed", True) else "failed")
            if status == "failed":
                card.reasons.append(_bar_reason(bar))
            elif status == "not_counted":
                card.inconclusive.append(f"bar not counted: {bar.get('expression', '')}")
            if card.status == "unknown":
                card.status = "deployable"
        if card.reasons:
            card.status = "blocked"
        elif card.status == "unknown":
            card.note = "no comparison against the baseline in this run"
        cards.append(card)
    return VerdictView(*_overall(cards, baseline), candidates=cards, baseline=baseline)


def _overall(cards: list[CandidateVerdict], baseline: str) -> tuple[VerdictStatus, str]:
    blocked = [c.candidate for c in cards if c.status == "blocked"]
    decided = [c.candidate for c in cards if c.status == "deployable"]
    if blocked:
        reasons = [r for c in cards if c.status == "blocked" for r in c.reasons]
        bars = sum(r.startswith("bar unmet") for r in reasons)
        counts = [f"{len(reasons) - bars} regression{'s' * (len(reasons) - bars != 1)} against {baseline}"
                  if len(reasons) > bars else "", f"{bars} unmet bar{'s' * (bars != 1)}" if bars else ""]
        return "blocked", f"Do not deploy {', '.join(blocked)}: {' and '.join(c for c in counts if c)}"
    if decided:
        return "deployable", f"Deployable: {', '.join(decided)} — no regression against {baseline}"
    if not cards:
        return "unknown", f"No verdict: only the baseline ({baseline}) was evaluated"
    if all(c.status == "skipped" for c in cards):
        return "unknown", "No verdict: every candidate besides the baseline was skipped"
    return "unknown", "No verdict: this run has no comparison against the baseline"
