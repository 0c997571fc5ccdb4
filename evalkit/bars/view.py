"""The bars table: every checked bar of a run as one row, for the report and for ``evalkit run``.

One view model (:func:`bar_rows`) that both the report's bars section and the CLI's
bars table print, so the two never say different things about a bar. Each row has the
candidate, the bar as the suite wrote it, its value in the metric's own format (a
drop bar's value is the change against the baseline, since that is what it limits), the
95% interval when there is one, the status, and in words what decided the bar or what
would decide it. Passed bars are rows too: a report that only says "every bar met"
leaves the reader to trust a list they cannot see.

Also in this module:

* The verdict banner and the candidates × metrics table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from evalkit.bars.spec import BarResult, BarStatus, clip_text, parse_bar_expression
from evalkit.benchmarks.spec import BenchmarksSection
from evalkit.comparison.result import MetricComparison
from evalkit.judges.section import judge_metric_not_counted
from evalkit.record.results import RunResult, bars_section, compared_baseline, comparison_section
from evalkit.report.charts import (
    format_delta,
    format_interval,
    format_p,
    format_value,
    is_field_metric,
    is_judge_metric,
    significance_marker,
)
from evalkit.usage.spec import USAGE_METRICS

# The verdict banner and the candidates × metrics table.
#
# Both read the run's ``comparison`` and ``bars`` sections, typed
# (:mod:`evalkit.record.results`), when present. Without a comparison the table
# still shows each candidate's means and their plain difference from the baseline, and
# the banner says that no verdict was computed.

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
    section: BenchmarksSection = run.section("benchmarks") or {}
    return section


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
          baseline_value: float | None, share: bool) -> MetricCell:
    if mc is None:
        delta = None if value is None or baseline_value is None else value - baseline_value
        return MetricCell(value=format_value(metric, value, share), delta=format_delta(metric, delta, share))
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
        # A lower-is-better metric (bits per byte) is a measurement in its own units, not a
        # share: every cell of its row says so, the baseline's too.
        share = next((found[metric].higher_is_better for found in compared.values() if metric in found), True)
        cells = {}
        for name in names:
            value = means.get(name, {}).get(metric)
            own_baseline = baseline_of(run, name)
            if name == own_baseline or (compared and name not in compared):
                cells[name] = MetricCell(value=format_value(metric, value, share))
            else:
                base_value = means.get(own_baseline, {}).get(metric)
                cells[name] = _cell(metric, compared.get(name, {}).get(metric), value, base_value, share)
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


def _bar_reason(bar: BarResult) -> str:
    return f"bar unmet: {bar.expression}" + (f" — {bar.message}" if bar.message else "")


def _undecided_bar(bar: BarResult) -> str:
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
    judges = run.section("judges") or {}
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
            if verdict in ("regressed", "inconclusive") and judge_metric_not_counted(judges, metric):
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


# The bars table: every checked bar of a run as one row, for the report and for ``evalkit run``.

STATUS_LABELS: dict[str, str] = {"passed": "passed", "failed": "failed", "inconclusive": "inconclusive",
                                 "not_counted": "not counted"}
"""How each bar status is written (the status itself is the row's CSS class and the CLI's colour key)."""

# A decided bar's message can run to several clauses (the paired test's explanation);
# the table keeps its first, the finding, and the verdict cards and pytest keep the rest.
_FOUND_WIDTH = 200


@dataclass(frozen=True)
class BarRow:
    """One bar of the run, written for a table.

    Attributes:
        candidate: the candidate the bar applies to.
        expression: the bar as the suite wrote it (``exact_match >= 0.80``).
        status: ``passed``, ``failed``, ``inconclusive`` or ``not_counted``.
        status_label: the status in words; an inconclusive bar says whether it blocks
            the gate (the suite's ``inconclusive: fail``) or only warns (``warn``).
        blocks: True when this outcome fails the gate.
        value: the bar's value in the metric's format; for a drop bar the change
            against the baseline (``−4.1 pt``); ``–`` when nothing was measured.
        value_detail: for a drop bar the baseline's and the candidate's values
            (``90.0% → 85.9%``), else empty.
        interval: the 95% interval (of the mean for a threshold bar, of the paired
            change for a drop bar), empty when there is none.
        decide: what decided the bar, or for an inconclusive one what would
            (``12 paired items cannot decide it; ~260 would``).
    """

    candidate: str
    expression: str
    status: BarStatus
    status_label: str
    blocks: bool
    value: str
    value_detail: str
    interval: str
    decide: str


def _focus_metric(record: BarResult, compared: Mapping[str, MetricComparison]) -> str | None:
    """Return the metric a bar's value is of.

    Its own, or for ``no significant regression`` on every metric the compared metric
    whose figures the bar took (the first regressed or undecided one).
    """
    if record.metric is not None or record.value is None:
        return record.metric
    for metric, mc in compared.items():
        if (mc.candidate_value, mc.baseline_value) == (record.value, record.baseline_value):
            return metric
    return None


def _is_share(metric: str | None, compared: Mapping[str, MetricComparison], directions: Mapping[str, bool]) -> bool:
    """True when the metric is written as a share (a lower-is-better metric is a measurement in its own units)."""
    if metric is None:
        return True
    if metric in compared:
        return compared[metric].higher_is_better
    return directions.get(metric, True)


def _written(metric: str | None, value: float, share: bool) -> str:
    """Return a value in its metric's format: a usage figure in its units, else as the metrics table writes it."""
    if metric in USAGE_METRICS:
        unit = " s" if metric.startswith(("latency", "ttft")) else ""
        return f"{value:.4g}{unit}"
    return format_value(metric or "", value, share)


def _value_cells(record: BarResult, metric: str | None, share: bool) -> tuple[str, str, str]:
    """Return (value, value detail, interval) for one bar."""
    if record.value is None:
        return "–", "", ""
    low, high = record.interval if record.interval is not None else (None, None)
    if record.kind == "threshold":
        interval = "" if low is None or high is None or metric in USAGE_METRICS else \
            f"[{_written(metric, low, share)}, {_written(metric, high, share)}]"
        return _written(metric, record.value, share), "", interval
    # A drop bar limits the change against the baseline: that is its value, and its
    # interval is the paired change's.
    name = metric or ""
    interval = format_interval(name, low, high, share)
    if record.baseline_value is None:
        return _written(metric, record.value, share), "", interval
    change = format_delta(name, record.value - record.baseline_value, share)
    detail = f"{_written(metric, record.baseline_value, share)} → {_written(metric, record.value, share)}"
    if record.metric is None and metric is not None:
        detail = f"{metric}: {detail}"  # no significant regression on every metric: say which one this is
    return change, detail, interval


def _decided(record: BarResult, share: bool) -> str:
    """Return what decided a passed or failed bar: the limit it met or missed, on how many items.

    Written from the bar itself when the record's message is the plain finding (``METRIC
    = ...`` or ``METRIC went ...``); any other message (a bar failed because its metric
    was not measured, or because too many judgments failed) is quoted, first clause only.
    """
    finding = clip_text(record.message.split("; ")[0], _FOUND_WIDTH)
    try:
        bar = parse_bar_expression(record.expression)
    except ValueError:  # a record from an older grammar: its own words
        bar = {}
    met = record.status == "passed"
    on = f" on {record.n_items:,} {'paired ' if record.kind != 'threshold' else ''}items" if record.n_items else ""
    metric = record.metric or ""
    if record.kind == "threshold" and bar.get("op") and record.message.startswith(f"{metric} = "):
        limit = f"{bar['op']} {_written(record.metric, bar['value'], share)}"
        return f"decided{on}: {'meets' if met else 'misses'} {limit}"
    if record.kind == "max_drop" and bar.get("max_drop") and record.message.startswith(f"{metric} went "):
        return f"decided{on}: {'within' if met else 'beyond'} the allowed {bar['max_drop']}"
    return f"decided: {finding}" if finding else "decided"


def _decide(record: BarResult, share: bool) -> str:
    """Return what decided the bar, or what would decide an inconclusive one, in words."""
    if record.status == "inconclusive":
        if record.items_needed:
            if record.n_items:
                return f"{record.n_items:,} paired items cannot decide it; ~{record.items_needed:,} would"
            return f"~{record.items_needed:,} paired items would decide it"
        # No paired items to count (the baseline was not evaluated, nothing was compared): the reason.
        return clip_text(record.message.split("; ")[0], _FOUND_WIDTH) or "nothing in this run decides it"
    if record.status == "not_counted":
        # A judge bar's reason is its first detail (the judge is not calibrated); a missing
        # candidate's is the message.
        return clip_text(record.details[0] if record.details else record.message, _FOUND_WIDTH)
    return _decided(record, share)


def _status_label(record: BarResult) -> str:
    label = STATUS_LABELS[record.status]
    if record.status == "inconclusive":
        return f"{label}, blocks" if record.blocks else f"{label}, warns only"
    return label


def bar_rows(run: RunResult) -> list[BarRow]:
    """Return one row per checked bar of the run, in the suite's order (empty when it has none).

    Args:
        run: the run; its ``bars`` section holds the records, its ``comparison`` and
            ``metric_kinds`` sections say how each metric is written.
    """
    records = bars_section(run.sections, f"run {run.run_id}:")
    if not records:
        return []
    # numpy (via compare): loaded only when the run has bars to show
    from evalkit.comparison.compare import declared_directions

    directions = declared_directions(run)
    compared = comparison_metrics(run)
    rows = []
    for record in records:
        own = compared.get(record.candidate, {})
        metric = _focus_metric(record, own)
        share = _is_share(metric, own, directions)
        value, detail, interval = _value_cells(record, metric, share)
        rows.append(BarRow(candidate=record.candidate, expression=record.expression, status=record.status,
                           status_label=_status_label(record), blocks=record.blocks, value=value,
                           value_detail=detail, interval=interval, decide=_decide(record, share)))
    return rows
