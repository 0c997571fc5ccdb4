"""Report sections for sweeps, slices and cost: the forgetting curve, the slice table, quality vs cost.

Each function reads one run section (``sweep``, ``slices``, ``usage``: see
:mod:`evalkit.sweeps.stage`, :mod:`evalkit.slices.compare`, :mod:`evalkit.usage.stage`) and returns what its
template shows; charts are inline SVG drawn with :mod:`evalkit.report.charts`' helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape

from evalkit.judges.section import JudgesSection
from evalkit.record.results import RunResult
from evalkit.record.run_facts import UsageSection
from evalkit.record.tradeoffs import SliceRow, SlicesSection, SweepSection
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
)


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

