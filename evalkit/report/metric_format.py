"""How the report writes a metric's value, delta, interval and significance.

Judge criteria are 1–5 scores and are written as plain numbers; a measurement in its
own units (``share=False``: bits per byte, a metric whose lower values are better) is
written with four decimals; every other metric is a share of items (or a mean of
shares) and is written as a percentage, its deltas in percentage points.
"""

from __future__ import annotations

import math

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
