"""The bars table: every checked bar of a run as one row, for the report and for ``evalkit run``.

One view model (:func:`bar_rows`) that both the report's bars section and the CLI's
bars table print, so the two never say different things about a bar. Each row has the
candidate, the bar as the suite wrote it, its value in the metric's own format (a
drop bar's value is the change against the baseline, since that is what it limits), the
95% interval when there is one, the status, and in words what decided the bar or what
would decide it. Passed bars are rows too: a report that only says "every bar met"
leaves the reader to trust a list they cannot see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evalkit.bars.result import BarRecord, clip_text
from evalkit.bars.spec import BarStatus, parse_bar_expression
from evalkit.bars.verdict_view import comparison_metrics
from evalkit.comparison.result import MetricComparison
from evalkit.record.results import RunResult
from evalkit.record.run_sections import bars_section
from evalkit.report.metric_format import format_delta, format_interval, format_value
from evalkit.usage.spec import USAGE_METRICS

__all__ = ["STATUS_LABELS", "BarRow", "bar_rows"]

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


def _focus_metric(record: BarRecord, compared: Mapping[str, MetricComparison]) -> str | None:
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


def _value_cells(record: BarRecord, metric: str | None, share: bool) -> tuple[str, str, str]:
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


def _decided(record: BarRecord, share: bool) -> str:
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


def _decide(record: BarRecord, share: bool) -> str:
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


def _status_label(record: BarRecord) -> str:
    label = STATUS_LABELS[record.status]
    if record.status == "inconclusive":
        return f"{label}, blocks" if record.blocks_gate else f"{label}, warns only"
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
                           status_label=_status_label(record), blocks=record.blocks_gate, value=value,
                           value_detail=detail, interval=interval, decide=_decide(record, share)))
    return rows
