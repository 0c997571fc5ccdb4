"""Report views: the failure cases and flips (one JSON document), controls, samples, sweeps, slices, cost.

The failure cases and flips are one compact JSON document the page's script reads
(:func:`failure_data`). Only items that failed a pass/fail check are embedded, once per
candidate, and at most ``MAX_FAILURES_SHOWN`` per candidate: the worst ones (most failed
checks first, then in item order), so the page's size does not grow with the items; the
heading says how many there are in all, and results.jsonl and the run store hold every
one. An item's expected output and input are embedded once however many candidates failed
it. Long texts are cut at ``MAX_TEXT_CHARS`` so that one runaway generation cannot bloat
the file. The page renders one page of cases at a time with ``textContent``.

Also here:

* Controls and repeated samples: the constrained base beside the fine-tune, and flaky items
  (:func:`control_views`, :func:`sampling_view`).
* Report sections for sweeps, slices and cost: the forgetting curve, the slice table, quality vs cost
  (:func:`sweep_view`, :func:`slice_tables`, :func:`cost_view`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from evalkit.comparison.result import MetricComparison
from evalkit.judges.section import JudgesSection
from evalkit.record.results import ItemResult, RunResult
from evalkit.record.run_facts import (
    ControlsSection,
    SamplingSection,
    SliceRow,
    SlicesSection,
    SweepSection,
    UsageSection,
)
from evalkit.report.charts import (
    IMPROVED,
    SERIES,
    _chart_title,
    _nice_ticks,
    _number,
    _svg,
    _x_axis,
    _y_grid,
    format_delta,
    format_value,
    is_field_metric,
    is_judge_metric,
)

MAX_TEXT_CHARS = 8000
MAX_FAILURES_SHOWN = 500
"""Failure cases embedded per candidate (the worst ones); the rest are counted, not shown."""
MAX_INPUT_VALUE_CHARS = 400
FLIP_IDS_SHOWN = 8


def cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with a note saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut here; {len(text):,} characters in all]"


def is_pass_fail_metric(metric: str) -> bool:
    """Return True for metrics whose score < 1 marks an item as a failure case."""
    return not is_judge_metric(metric)


def input_summary(item: ItemResult) -> str:
    """Return the item's input fields as ``name: value`` lines (the expected output left out)."""
    lines = []
    for name, value in item.fields.items():
        text = value if isinstance(value, str) else repr(value)
        if text.strip() == item.expected.strip():
            continue
        lines.append(f"{name}: {cut(text, MAX_INPUT_VALUE_CHARS)}")
    return "\n".join(lines)


@dataclass
class FlipSide:
    """Items that flipped one way: how many, the first ids, and the viewer's filter index."""

    count: int = 0
    shown_ids: list[str] = field(default_factory=list)
    index: int | None = None


@dataclass
class FlipRow:
    """Items that flipped on one metric for one candidate against its baseline."""

    candidate: str
    metric: str
    pass_to_fail: FlipSide
    fail_to_pass: FlipSide


@dataclass
class FailureData:
    """The embedded document and what the HTML around it needs to know."""

    payload: dict[str, Any]
    candidates: list[str]
    checks: list[str]
    fields: list[str]
    total: int
    """Candidate × item failures in the run."""
    flips: list[FlipRow] = field(default_factory=list)
    shown: int = 0
    """Of those, the ones embedded (at most ``MAX_FAILURES_SHOWN`` per candidate)."""


class _Interned:
    """Assigns each distinct string an index, so repeated strings are embedded once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    def values(self) -> list[str]:
        return list(self.index)


def failure_data(run: RunResult, flips_by_candidate: Mapping[str, Mapping[str, MetricComparison]],
                 baselines: Mapping[str, str]) -> FailureData:
    """Build the embedded failure document and the flips table.

    Args:
        run: the run.
        flips_by_candidate: candidate -> metric -> its comparison (with ``pass_to_fail``
            and ``fail_to_pass`` item id lists).
        baselines: candidate -> the candidate it was compared with.
    """
    # Candidates under review first, baselines last: the reviewer reads those first.
    evaluated = sorted((c for c in run.candidates if c.status == "ok"),
                       key=lambda c: c.name in set(baselines.values()))
    candidates = [c.name for c in evaluated]
    checks, fields, reasons, item_index = _Interned(), _Interned(), _Interned(), _Interned()
    items: list[list[str]] = []
    records: list[list[Any]] = []
    total = 0
    for candidate_no, candidate in enumerate(evaluated):
        # One pass counts every failure and keeps the worst few: most failed checks, then item order.
        worst: list[tuple[int, int]] = []
        for position, item in enumerate(candidate.items):
            failures = sum(1 for name, score in item.scores.items() if score.value < 1.0 and is_pass_fail_metric(name))
            if not failures:
                continue
            total += 1
            if len(worst) < MAX_FAILURES_SHOWN:
                heapq.heappush(worst, (failures, -position))
            elif (failures, -position) > worst[0]:
                heapq.heapreplace(worst, (failures, -position))
        for _, negative_position in sorted(worst, reverse=True):
            item = candidate.items[-negative_position]
            failed = [(name, score) for name, score in item.scores.items()
                      if score.value < 1.0 and is_pass_fail_metric(name)]
            if item.item_id not in item_index.index:
                item_index(item.item_id)
                items.append([item.item_id, cut(item.expected), input_summary(item)])
            failed_checks = [[checks(name), reasons(cut(score.reason, 500))]
                             for name, score in failed if not is_field_metric(name)]
            failed_fields = [fields(name.split(".", 1)[1]) for name, _ in failed if is_field_metric(name)]
            records.append([candidate_no, item_index.index[item.item_id], cut(item.prediction),
                            failed_checks, failed_fields])
    flip_rows, flip_payload = _flips(flips_by_candidate, item_index.index, baselines, candidates)
    payload = {
        "candidates": candidates, "checks": checks.values(), "fields": fields.values(),
        "reasons": reasons.values(), "items": items, "records": records, "flips": flip_payload,
    }
    return FailureData(payload, candidates, checks.values(), fields.values(), total, flip_rows, shown=len(records))


def _flips(by_candidate: Mapping[str, Mapping[str, MetricComparison]], item_index: Mapping[str, int],
           baselines: Mapping[str, str], candidates: Sequence[str]) -> tuple[list[FlipRow], list[dict[str, Any]]]:
    rows: list[FlipRow] = []
    payload: list[dict[str, Any]] = []
    for candidate, metrics in by_candidate.items():
        for metric, mc in metrics.items():
            sides = []
            for direction, key in (("pass → fail", "pass_to_fail"), ("fail → pass", "fail_to_pass")):
                ids = [str(i) for i in getattr(mc, key)]
                side = FlipSide(getattr(mc, f"n_{key}"), ids[:FLIP_IDS_SHOWN])
                # pass → fail cases are failures of the candidate; fail → pass ones of the baseline.
                shown_in = candidate if key == "pass_to_fail" else baselines.get(candidate, "")
                known = [item_index[i] for i in ids if i in item_index]
                if known and shown_in in candidates:
                    side.index = len(payload)
                    payload.append({"candidate": candidates.index(shown_in), "items": known,
                                    "label": f"{candidate}: {metric} {direction}"})
                sides.append(side)
            if sides[0].count or sides[1].count:
                rows.append(FlipRow(candidate, metric, sides[0], sides[1]))
    return rows, payload


# Controls and repeated samples: the constrained base beside the fine-tune, and flaky items.
#
# * ``controls`` (candidates with ``constrain: json_schema``): the task metrics of the
#   baseline, the constrained base and every other candidate side by side, and for each
#   other candidate the share of its gain over the baseline that the format constraint
#   alone already gets: did fine-tuning teach the labels, or only the format?
# * ``sampling`` (``generation.samples`` > 1): the settings, and per candidate the items
#   whose samples disagree on a pass/fail check, with each sample's output.

CONTROL_METRICS = ("exact_match", "json_valid", "json_schema")
MAX_OUTPUT_CHARS = 600


@dataclass
class ControlView:
    """One constrained candidate against the baseline and the other candidates."""

    control: str
    baseline: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    findings: list[str] = field(default_factory=list)


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def control_views(run: RunResult) -> list[ControlView]:
    """Return one view per constrained candidate (empty when the run has none)."""
    controls: ControlsSection = run.section("controls") or {}
    means = {c.name: c.metrics() for c in run.candidates if c.status == "ok"}
    baseline = run.baseline
    views = []
    for control in controls:
        if control not in means or baseline not in means:
            continue
        others = [name for name in means if name not in (baseline, control) and name not in controls]
        columns = [baseline, control, *others]
        metrics = [m for m in means[control] if m in CONTROL_METRICS or m.startswith("field")]
        rows = [(m, [_shown(means[c].get(m)) for c in columns]) for m in metrics]
        view = ControlView(control=control, baseline=baseline, columns=columns, rows=rows)
        for other in others:
            for metric in ("exact_match", *[m for m in metrics if m.startswith("field")][:1]):
                base, constrained, tuned = (means[c].get(metric) for c in (baseline, control, other))
                if base is None or constrained is None or tuned is None:
                    continue
                gain = tuned - base
                if gain <= 0:
                    view.findings.append(f"{other} does not beat {baseline} on {metric} "
                                         f"({tuned:.3f} vs {base:.3f}); {control} scores {constrained:.3f}")
                    continue
                share = (constrained - base) / gain
                view.findings.append(
                    f"on {metric}, {other} gains {gain:+.3f} over {baseline}; the format constraint alone "
                    f"({control}) gets {constrained - base:+.3f} of it ({share * 100:.0f}%): "
                    + ("most of the gain is format" if share >= 0.5 else "most of the gain is the labels"))
        views.append(view)
    return views


@dataclass
class FlakyItem:
    """An item whose samples disagree."""

    candidate: str
    item_id: str
    rates: list[tuple[str, str]]
    outputs: list[str]


@dataclass
class SamplingView:
    """The sampling settings and the flaky items."""

    settings: str
    totals: dict[str, int]
    flaky: list[FlakyItem]


def sampling_view(run: RunResult) -> SamplingView | None:
    """Return the repeated-sampling view (None when the run sampled once per item)."""
    section: SamplingSection | None = run.section("sampling")
    if section is None or section.samples <= 1:
        return None
    settings = (f"{section.samples} samples per item at temperature {section.temperature}, seed "
                f"{section.seed}; each check is a per-item pass rate (pass@1), with pass@k and pass^k "
                f"for k = {', '.join(str(k) for k in section.pass_at)}")
    flaky = [FlakyItem(candidate=candidate, item_id=entry.item_id,
                       rates=[(m, f"{v * 100:.0f}%") for m, v in entry.rates.items()],
                       outputs=[cut(o, MAX_OUTPUT_CHARS) for o in entry.outputs])
             for candidate, entries in section.flaky.items() for entry in entries]
    return SamplingView(settings=settings, totals=dict(section.flaky_total), flaky=flaky)


# Report sections for sweeps, slices and cost: the forgetting curve, the slice table, quality vs cost.
#
# Each function reads one run section (``sweep``, ``slices``, ``usage``: see
# :mod:`evalkit.sweeps.stage`, :mod:`evalkit.slices.compare`, :mod:`evalkit.usage.stage`) and returns what its
# template shows; charts are inline SVG drawn with :mod:`evalkit.report.charts`' helpers.

def _line_chart(title: str, xs: list[float], series: dict[str, list[float | None]], x_label: str,
                marked: int | None, percent: bool) -> Markup:
    """Draw lines over numeric x values, with one x position ringed (the pick)."""
    scale = 100.0 if percent else 1.0
    values = [v * scale for vs in series.values() for v in vs if v is not None]
    ticks = _nice_ticks(min(values, default=0.0), max(values, default=1.0), 4)
    low, high = ticks[0], ticks[-1]
    left, top, width, height = 48.0, 26.0, 360.0, 150.0
    x_low, x_high = min(xs, default=0.0), max(xs, default=1.0)
    span = (x_high - x_low) or 1.0

    def x(value: float) -> float:
        return left + 10 + (value - x_low) / span * (width - 20)

    def y(value: float) -> float:
        return top + height - (value - low) / (high - low) * height

    body = [_chart_title(title)]
    body += _y_grid(((y(tick), f'{_number(tick)}{"%" if percent else ""}') for tick in ticks), left, width)
    body += _x_axis(((x(value), _number(value)) for value in xs), x_label, left, width, top + height)
    for number, (name, points) in enumerate(series.items()):
        colour = SERIES[number % len(SERIES)]
        coords = [(x(xs[i]), y(v * scale), v) for i, v in enumerate(points) if v is not None]
        if coords:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in coords)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        for px, py, value in coords:
            body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{escape(name)}: '
                        f'{_number(round(value * scale, 2))}{"%" if percent else ""}</title></circle>')
        body.append(f'<rect x="{left + width + 12}" y="{top + number * 16 - 8}" width="10" height="10" '
                    f'fill="{colour}"/><text x="{left + width + 26}" y="{top + number * 16 + 1}">{escape(name)}</text>')
    if marked is not None:
        body.append(f'<line x1="{x(xs[marked]):.1f}" x2="{x(xs[marked]):.1f}" y1="{top}" y2="{top + height}" '
                    f'stroke="{IMPROVED}" stroke-dasharray="4 3"/><text x="{x(xs[marked]) + 4:.1f}" '
                    f'y="{top + 10}" fill="{IMPROVED}" font-weight="600">pick</text>')
    legend = max((len(name) for name in series), default=4) * 6.2 + 40
    return _svg(left + width + legend, top + height + 40, title, body)


@dataclass
class SweepView:
    """The forgetting curve and the table of checkpoints, with the pick."""

    name: str
    chart: Markup
    rows: list[dict[str, str]]
    pick: str | None
    reason: str


def sweep_view(run: RunResult) -> SweepView | None:
    """Return the sweep section's view, or None when the run has no sweep."""
    section: SweepSection | None = run.section("sweep")
    if section is None:
        return None
    points = section.points
    if not points:
        return None
    task, bench = section.task_metric, section.benchmark
    xs = [float(p.step) if p.step is not None else float(i) for i, p in enumerate(points)]
    series: dict[str, list[float | None]] = {task: [p.task for p in points]}
    if bench:
        series[bench] = [p.benchmark for p in points]
    marked = next((i for i, p in enumerate(points) if p.candidate == section.pick), None)
    chart = _line_chart(f"forgetting curve: {task}" + (f" and {bench}" if bench else "") + " per checkpoint",
                        xs, series, "training step", marked, percent=True)
    rows = [{"candidate": p.candidate, "step": "" if p.step is None else str(p.step),
             "task": format_value(task, p.task),
             "benchmark": format_value(bench, p.benchmark) if bench else "–",
             "bar": p.bar or "–", "picked": "yes" if p.candidate == section.pick else ""}
            for p in points]
    return SweepView(section.name, chart, rows, section.pick, section.reason)


@dataclass
class SliceTable:
    """One candidate's slice x metric table: cells coloured by their corrected verdict."""

    candidate: str
    baseline: str
    family_size: int
    metrics: list[str]
    rows: list[tuple[str, str, int, list[dict[str, str]]]] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


def slice_tables(run: RunResult) -> list[SliceTable]:
    """Return one table per compared candidate (empty when the run has no slices)."""
    section: SlicesSection | None = run.section("slices")
    if section is None:
        return []
    tables = []
    for name, entry in section.candidates.items():
        metrics = list(dict.fromkeys(row.comparison.metric for row in entry.rows))
        table = SliceTable(name, entry.baseline, entry.family_size, metrics)
        cells: dict[tuple[str, str], dict[str, SliceRow]] = {}
        for row in entry.rows:
            cells.setdefault((row.slice, row.value), {})[row.comparison.metric] = row
        for (slice_name, value), by_metric in cells.items():
            n = max(row.comparison.n_items for row in by_metric.values())
            shown = []
            for metric in metrics:
                found = by_metric.get(metric)
                if found is None:
                    shown.append({"verdict": "", "delta": "–", "title": "not measured"})
                    continue
                mde = f"{found.mde * 100:.1f} pt" if found.mde is not None else "none"
                compared = found.comparison
                shown.append({"verdict": found.verdict, "delta": format_delta(metric, compared.delta),
                              "title": f"{format_value(metric, compared.baseline_value)} -> "
                                       f"{format_value(metric, compared.candidate_value)}; p={compared.p_value:.3g}, "
                                       f"Holm p={found.p_adjusted:.3g}; detectable drop {mde}; {found.verdict}"})
                if found.verdict == "regressed":
                    table.flagged.append(f"{metric}[{slice_name}={value}]")
            table.rows.append((slice_name, value, n, shown))
        tables.append(table)
    return tables


@dataclass
class CostView:
    """Quality against cost (or latency) per candidate, as a chart and a table."""

    chart: Markup | None
    rows: list[dict[str, str]]
    x_label: str
    judges: list[dict[str, str]] = field(default_factory=list)
    """One row per API judge: requests, tokens in / out, latency, money."""


def judge_cost_rows(run: RunResult) -> list[dict[str, str]]:
    """Return one row per judge entry that counted its API usage (``judges.<name>.usage``)."""
    rows = []
    judges: JudgesSection = run.section("judges") or {}
    for name, entry in judges.items():
        usage, judge = entry.usage, entry.judge
        if usage is None:
            continue
        rows.append({"judge": name, "model": f"{judge.provider}:{judge.model}" if judge is not None else ":",
                     "requests": str(usage.requests) + (" (all cached)" if not usage.requests else ""),
                     "tokens": "–" if usage.prompt_tokens is None
                     else f"{usage.prompt_tokens} / {usage.completion_tokens}",
                     "p50": _seconds(usage.latency_p50), "p95": _seconds(usage.latency_p95),
                     "cost": _money(usage.cost, usage.currency)})
    return rows


def _latency_label(source: str | None) -> str:
    # A batched backend's item latency is its batch's time shared out: the cell says so.
    return {"batch_share": " (batch share)", "mixed": " (some batch shares)"}.get(source or "", "")


def cost_view(run: RunResult, quality_metric: str | None = None) -> CostView | None:
    """Return the usage view, or None when no candidate's usage was measured and no API judge ran."""
    section: UsageSection = run.section("usage") or {}
    judges = judge_cost_rows(run)
    if not any(e.measured_items for e in section.values()):
        return CostView(None, [], "", judges) if judges else None
    means = {c.name: c.metrics() for c in run.candidates if c.status == "ok"}
    metric = quality_metric or next((m for ms in means.values() for m in ms), "")
    has_cost = any(e.cost_per_1k_items is not None for e in section.values())
    x_label = "cost per 1,000 items" if has_cost else "median latency (s)"
    rows, points = [], []
    for name, entry in section.items():
        quality = means.get(name, {}).get(metric)
        rows.append({"candidate": name, "quality": format_value(metric, quality),
                     "tokens": "–" if entry.completion_tokens_per_item is None
                     else f"{entry.prompt_tokens_per_item:.0f} / {entry.completion_tokens_per_item:.1f}",
                     "tps": "–" if entry.tokens_per_second is None else f"{entry.tokens_per_second:.1f}",
                     "p50": _seconds(entry.latency_p50) + _latency_label(entry.latency_source),
                     "p95": _seconds(entry.latency_p95) + _latency_label(entry.latency_source),
                     "ttft": _seconds(entry.ttft_p50),
                     "cost": _money(entry.cost_per_1k_items, entry.currency),
                     "measured": f"{entry.measured_items} of {entry.items}"})
        x_value = entry.cost_per_1k_items if has_cost else entry.latency_p50
        if quality is not None and x_value is not None:
            points.append((name, float(x_value), float(quality)))
    chart = _scatter(f"{metric} against {x_label}", points, x_label, metric) if points else None
    return CostView(chart, rows, x_label, judges)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g} s"


def _money(value: float | None, currency: str | None) -> str:
    return "–" if value is None else f"{value:.4g} {currency or ''}".rstrip()


def _scatter(title: str, points: list[tuple[str, float, float]], x_label: str, metric: str) -> Markup:
    left, top, width, height = 56.0, 26.0, 360.0, 170.0
    x_ticks = _nice_ticks(0.0, max(p[1] for p in points) or 1.0, 4)
    y_ticks = _nice_ticks(min(p[2] for p in points) * 100, max(p[2] for p in points) * 100, 4)

    def x(value: float) -> float:
        return left + (value - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * width

    def y(value: float) -> float:
        return top + height - (value * 100 - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * height

    body = [_chart_title(title)]
    body += _y_grid(((y(tick / 100), f"{_number(tick)}%") for tick in y_ticks), left, width)
    body += _x_axis(((x(tick), _number(tick)) for tick in x_ticks), f"{x_label} (left and up is better)",
                    left, width, top + height)
    for number, (name, cost, quality) in enumerate(points):
        colour = SERIES[number % len(SERIES)]
        body.append(f'<circle cx="{x(cost):.1f}" cy="{y(quality):.1f}" r="4" fill="{colour}"><title>{escape(name)}: '
                    f"{escape(format_value(metric, quality))} at {_number(round(cost, 6))}</title></circle>"
                    f'<text x="{x(cost) + 6:.1f}" y="{y(quality) - 6:.1f}" fill="{colour}">{escape(name)}</text>')
    return _svg(left + width + 120, top + height + 40, title, body)
