"""Charts as inline SVG, drawn here directly.

matplotlib took over a second per chart on a loaded 2-core machine (text layout of
57 tick labels), which every ``evalkit run`` would pay; these charts are simple enough
to write as SVG elements, in milliseconds, with every label escaped by markupsafe.

Also in this module:

* How the report writes a metric's value, delta, interval and significance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from markupsafe import Markup, escape

REGRESSED = "#c62828"
IMPROVED = "#2e7d32"
NEUTRAL = "#78909c"
SERIES = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#37474f"]
MAX_RUN_LABEL = 18
_CHAR_WIDTH = 6.2  # px per character of 11px sans-serif, to size the label margin
_FONT = 'font-family="system-ui, DejaVu Sans, sans-serif"'


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Return round tick values from at or below ``low`` to at or above ``high``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [math.floor(low / step) * step]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(ticks[-1] + step)
    return [round(t, 10) for t in ticks]


def _number(value: float) -> str:
    return f"{value:g}".replace("-", "\u2212")


def _svg(width: float, height: float, title: str, body: list[str]) -> Markup:
    head = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}" {_FONT} '
            'font-size="11">')
    return Markup(head + f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def _chart_title(title: str) -> str:
    """The chart's heading, top left."""
    return f'<text x="0" y="14" font-size="12" font-weight="600">{escape(title)}</text>'


def _y_grid(ticks: Iterable[tuple[float, str]], left: float, width: float) -> list[str]:
    """A horizontal grid line per ``(y, label)`` across the plot, its label right-aligned left of it."""
    return [f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6e8"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#5f6b73">{label}</text>'
            for y, label in ticks]


def _x_axis(ticks: Iterable[tuple[float, str]], caption: str, left: float, width: float, bottom: float) -> list[str]:
    """A label per ``(x, label)`` under the plot, then the axis caption centred below them."""
    body = [f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="#5f6b73">{label}</text>'
            for x, label in ticks]
    body.append(f'<text x="{left + width / 2:.1f}" y="{bottom + 30:.1f}" text-anchor="middle" '
                f'fill="#5f6b73">{escape(caption)}</text>')
    return body


def delta_bar_chart(title: str, labels: Sequence[str], deltas: Sequence[float], unit: str = "pt") -> Markup:
    """Draw horizontal bars of per-label deltas (negative red, positive green), worst first.

    Args:
        title: the chart's title.
        labels: one label per bar (e.g. MMLU subjects).
        deltas: the delta per label, in ``unit``.
        unit: the axis unit.

    Returns:
        The chart as an inline SVG element.
    """
    order = sorted(range(len(labels)), key=lambda i: deltas[i])
    label_width = min(260.0, max((len(str(label)) for label in labels), default=4) * _CHAR_WIDTH + 12)
    plot_width, bar, top = 420.0, 14.0, 34.0
    width = label_width + plot_width + 20
    height = top + bar * len(labels) + 34
    ticks = _nice_ticks(min(0.0, *deltas) if deltas else -1.0, max(0.0, *deltas) if deltas else 1.0)
    low, high = ticks[0], ticks[-1]

    def x(value: float) -> float:
        return label_width + (value - low) / (high - low) * plot_width

    body = [_chart_title(title)]
    bottom = top + bar * len(labels)
    for tick in ticks:
        body.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 4}" y2="{bottom:.1f}" '
                    'stroke="#e3e6e8"/>')
        body.append(f'<text x="{x(tick):.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="#5f6b73">'
                    f"{_number(tick)}</text>")
    for row, index in enumerate(order):
        value = deltas[index]
        y = top + row * bar
        colour = REGRESSED if value < 0 else IMPROVED if value > 0 else NEUTRAL
        left, right = sorted((x(0.0), x(value)))
        body.append(f'<text x="{label_width - 6:.1f}" y="{y + bar * 0.72:.1f}" text-anchor="end">'
                    f"{escape(labels[index])}</text>")
        body.append(f'<rect x="{left:.1f}" y="{y + 2:.1f}" width="{max(right - left, 0.8):.1f}" '
                    f'height="{bar - 4:.1f}" fill="{colour}"><title>{escape(labels[index])}: '
                    f"{_number(round(value, 1))} {escape(unit)}</title></rect>")
    body.append(f'<line x1="{x(0.0):.1f}" x2="{x(0.0):.1f}" y1="{top - 4}" y2="{bottom:.1f}" stroke="#333"/>')
    body.append(f'<text x="{label_width + plot_width / 2:.1f}" y="{bottom + 30:.1f}" text-anchor="middle" '
                f'fill="#5f6b73">change against the baseline ({escape(unit)})</text>')
    return _svg(width, height, title, body)


def trend_chart(title: str, run_labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
                percent: bool) -> Markup:
    """Draw one line per series across runs (gaps where a run lacks the value).

    Args:
        title: the chart's title (the metric).
        run_labels: x axis labels, oldest first.
        series: series name (candidate) -> one value per run.
        percent: show values as percentages.

    Returns:
        The chart as an inline SVG element.
    """
    scale = 100.0 if percent else 1.0
    values = [v * scale for vs in series.values() for v in vs if v is not None]
    ticks = _nice_ticks(min(values, default=0.0), max(values, default=1.0), 4)
    low, high = ticks[0], ticks[-1]
    # The left margin leaves room for the first rotated run label.
    left, top, plot_width, plot_height = 96.0, 26.0, 330.0, 130.0
    legend_width = min(180.0, max((len(str(n)) for n in series), default=4) * _CHAR_WIDTH + 24)
    width, height = left + plot_width + legend_width + 10, top + plot_height + 56
    count = max(len(run_labels), 1)

    def x(index: int) -> float:
        return left + (index + 0.5) * plot_width / count

    def y(value: float) -> float:
        return top + plot_height - (value - low) / (high - low) * plot_height

    body = [_chart_title(title)]
    body += _y_grid(((y(tick), f'{_number(tick)}{"%" if percent else ""}') for tick in ticks), left, plot_width)
    step = max(1, math.ceil(count / 8))  # at most ~8 x labels, so they never overlap
    for index, label in enumerate(run_labels):
        if index % step == 0 or index == count - 1:
            body.append(f'<text x="{x(index):.1f}" y="{top + plot_height + 14:.1f}" text-anchor="end" '
                        f'font-size="9" fill="#5f6b73" transform="rotate(-30 {x(index):.1f} '
                        f'{top + plot_height + 14:.1f})">{escape(label[:MAX_RUN_LABEL])}</text>')
    for number, (name, points) in enumerate(series.items()):
        colour = SERIES[number % len(SERIES)]
        coords = [(x(i), y(v * scale)) for i, v in enumerate(points) if v is not None]
        if not coords:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        for (px, py), value in zip(coords, [v for v in points if v is not None], strict=True):
            body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="{colour}"><title>{escape(name)}: '
                        f'{_number(round(value * scale, 2))}{"%" if percent else ""}</title></circle>')
        legend_y = top + 4 + number * 15
        body.append(f'<rect x="{left + plot_width + 12}" y="{legend_y - 8}" width="10" height="10" '
                    f'fill="{colour}"/><text x="{left + plot_width + 26}" y="{legend_y + 1}">{escape(name)}</text>')
    return _svg(width, height, title, body)


# How the report writes a metric's value, delta, interval and significance.
#
# Judge criteria are 1–5 scores and are written as plain numbers; a measurement in its
# own units (``share=False``: bits per byte, a metric whose lower values are better) is
# written with four decimals; every other metric is a share of items (or a mean of
# shares) and is written as a percentage, its deltas in percentage points.

MINUS = "\u2212"


def is_judge_metric(metric: str) -> bool:
    """Return True for a judge criterion (``judge.<rubric>.<criterion>``)."""
    return metric.startswith("judge.")


def is_field_metric(metric: str) -> bool:
    """Return True for a per-field accuracy metric (``field_accuracy.<field>``)."""
    return metric.startswith("field_accuracy.")


def _signed(number: float, decimals: int) -> str:
    text = f"{abs(number):.{decimals}f}"
    if float(text) == 0.0:
        return f"±{text}"
    return f"+{text}" if number > 0 else f"{MINUS}{text}"


def format_value(metric: str, value: float | None, share: bool = True) -> str:
    """Return a metric's value as shown in tables (``87.3%``, ``3.42``, or ``0.9631`` for a measurement)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if not share:
        return f"{value:.4f}"
    return f"{value:.2f}" if is_judge_metric(metric) else f"{value * 100:.1f}%"


def delta_unit(metric: str) -> str:
    """Return the unit a metric's deltas are written in (``pt`` or empty)."""
    return "" if is_judge_metric(metric) else " pt"


def format_delta(metric: str, delta: float | None, share: bool = True) -> str:
    """Return a delta against the baseline (``−4.1 pt``, ``+0.31``, or ``+0.0123`` for a measurement)."""
    if delta is None:
        return ""
    if not share:
        return _signed(delta, 4)
    if is_judge_metric(metric):
        return _signed(delta, 2)
    return _signed(delta * 100, 1) + " pt"


def format_interval(metric: str, low: float | None, high: float | None, share: bool = True) -> str:
    """Return a 95% interval on a delta (``[−6.2, −1.9]``), empty when unknown."""
    if low is None or high is None:
        return ""
    scale, decimals = (1.0, 2) if is_judge_metric(metric) else (100.0, 1)
    if not share:
        scale, decimals = 1.0, 4
    return f"[{_signed(low * scale, decimals)}, {_signed(high * scale, decimals)}]"


def significance_marker(p_value: float | None) -> str:
    """Return ``***``, ``**``, ``*`` for p below 0.001, 0.01, 0.05, else empty."""
    if p_value is None:
        return ""
    if p_value < 0.001:
        return "***"
    if p_value < 0.01:
        return "**"
    if p_value < 0.05:
        return "*"
    return ""


def format_p(p_value: float | None) -> str:
    """Return a p-value as written in text (``p < 0.001``, ``p = 0.032``)."""
    if p_value is None:
        return ""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
