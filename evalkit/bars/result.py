"""What checking a bar found: :class:`BarResult` (also the entry a run stores), its evidence, and the mean's interval.

Data only (it imports the bar grammar and nothing above it), so the measurements that
check their own bars (:mod:`evalkit.usage.stage`) and :mod:`evalkit.bars.evaluate` share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from evalkit.bars.spec import DEFAULT_INCONCLUSIVE, BarKind, BarSpec, BarStatus, InconclusivePolicy, bar_blocks
from evalkit.record.sections import SectionModel

__all__ = ["BarResult", "ItemEvidence", "clip_text", "format_value", "mean_interval"]


@dataclass(frozen=True)
class ItemEvidence:
    """One item that pulls a bar down.

    Attributes:
        item_id: the item's id (a benchmark document id for benchmark metrics).
        value: the candidate's value on the item.
        baseline_value: the baseline's value on it (comparison bars only).
        reason: why it scored low (a check's reason or a judge's reasoning).
        prediction: the start of the candidate's answer.
    """

    item_id: str
    value: float
    baseline_value: float | None = None
    reason: str = ""
    prediction: str = ""

    def describe(self) -> str:
        """Return one line for an explanation."""
        value = format_value(self.value)
        if self.baseline_value is not None:
            value = f"{format_value(self.baseline_value)} -> {value}"
        parts = [f"{self.item_id}: {value}"]
        if self.reason:
            parts.append(clip_text(self.reason, 100))
        if self.prediction:
            parts.append(f"answer {clip_text(self.prediction, 60)!r}")
        return " — ".join(parts)


class BarResult(SectionModel):
    """A bar checked against a run: what the check found, and its entry in ``run.sections["bars"]``.

    One type for the result in memory (what :func:`evalkit.bars.evaluate.evaluate_bar`
    and the pytest plugin's ``assert_bar`` return) and for the record a run stores and
    reads back; :meth:`of` builds one from a :class:`BarSpec`, ``model_dump(mode="json")``
    gives the stored form, and :func:`evalkit.record.run_sections.bars_section` reads it.

    ``passed`` and ``blocks`` are stored for readers of the JSON, but never set: they are
    derived from ``status`` and ``inconclusive_policy`` whenever a result is built, read
    back or changed (assignments are validated), so neither can disagree with them; a
    stored ``blocks`` is decided again on reading (:func:`bar_blocks`). Records written
    before statuses existed get ``status`` from ``passed``, and ``kind`` from the
    expression when they lack it.

    Attributes:
        candidate: the candidate the bar applies to.
        expression: the bar as written, e.g. ``exact_match >= 0.80``.
        metric: the bar's metric (None for ``no significant regression`` on every metric).
        kind: ``threshold``, ``max_drop`` or ``no_regression``.
        passed: True when the bar was counted and met (derived from ``status``).
        status: ``passed``, ``failed``, ``inconclusive`` (a drop bar the data cannot
            decide), or ``not_counted`` (a judge bar whose judge is not calibrated, or a
            bar of a candidate the suite lets be missing: shown, never a pass).
        value: the candidate's value (a metric's mean, or its drop for ``max_drop``).
        message: one line saying what was found.
        interval: 95% interval of ``value`` (the mean's, or the paired delta's).
        baseline: the baseline candidate's name.
        baseline_value: the baseline's value of the metric.
        n_items: how many items the value rests on.
        details: further lines of evidence (per-metric verdicts, notes).
        worst_items: the items that pull the bar down, worst first.
        inconclusive_policy: the suite's ``inconclusive:`` choice, which decides whether
            an inconclusive outcome blocks.
        blocks: True when this outcome fails the gate (derived: :func:`bar_blocks` of
            ``status`` and ``inconclusive_policy``).
        items_needed: paired items that would decide an inconclusive drop bar.
    """

    model_config = ConfigDict(validate_assignment=True)  # keeps passed/blocks derived when code sets status

    candidate: str
    expression: str
    metric: str | None = None
    kind: BarKind
    passed: bool = False
    status: BarStatus
    value: float | None = None
    message: str = ""
    interval: tuple[float, float] | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    n_items: int = 0
    details: list[str] = Field(default_factory=list)
    worst_items: list[ItemEvidence] = Field(default_factory=list)
    inconclusive_policy: InconclusivePolicy = DEFAULT_INCONCLUSIVE
    blocks: bool = False
    items_needed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_derived_fields(cls, data: Any) -> Any:
        # Runs also on every assignment, with the whole record and the new value.
        if not isinstance(data, Mapping):
            return data
        status = data.get("status") or ("passed" if data.get("passed", True) else "failed")  # before statuses
        policy = data.get("inconclusive_policy") or DEFAULT_INCONCLUSIVE
        data = {**data, "status": status, "passed": status == "passed", "blocks": bar_blocks(status, policy)}
        if "kind" not in data and isinstance(data.get("expression"), str):
            try:
                data["kind"] = BarSpec.of(str(data.get("candidate")), data["expression"]).kind
            except ValueError:
                pass  # left missing: validation names the field
        return data

    @classmethod
    def of(
        cls, bar: BarSpec, status: BarStatus, value: float | None = None, message: str = "", *,
        interval: tuple[float, float] | None = None, baseline: str | None = None,
        baseline_value: float | None = None, n_items: int = 0, items_needed: int | None = None,
        policy: InconclusivePolicy = DEFAULT_INCONCLUSIVE,
    ) -> BarResult:
        """Return the result of checking ``bar``: its candidate, expression, metric and kind, and what was found.

        Args:
            bar: the bar checked.
            status: its outcome (see the class docstring).
            value: the candidate's value.
            message: one line saying what was found.
            interval: 95% interval of ``value``.
            baseline: the baseline candidate's name.
            baseline_value: the baseline's value of the metric.
            n_items: how many items the value rests on.
            items_needed: paired items that would decide an inconclusive drop bar.
            policy: the suite's ``inconclusive:`` choice.
        """
        return cls(
            candidate=bar.candidate, expression=bar.expression, metric=bar.metric, kind=bar.kind, status=status,
            value=value, message=message, interval=interval, baseline=baseline, baseline_value=baseline_value,
            n_items=n_items, items_needed=items_needed, inconclusive_policy=policy,
        )

    @property
    def bar(self) -> BarSpec:
        """The bar checked, parsed again from its candidate and expression."""
        return BarSpec.of(self.candidate, self.expression)

    @property
    def policy(self) -> InconclusivePolicy:
        """The suite's ``inconclusive:`` choice (``inconclusive_policy``)."""
        return self.inconclusive_policy

    @property
    def failed(self) -> bool:
        """True when the bar was counted and not met."""
        return self.status == "failed"

    def explain(self) -> str:
        """Return the multi-line explanation a failing test shows: value, bar, interval, baseline, items."""
        lines = [self.message]
        if self.status == "inconclusive":
            effect = ("fails the gate (the suite's inconclusive: fail)" if self.blocks
                      else "does not gate (the suite's inconclusive: warn)")
            need = f"; about {self.items_needed:,} paired items would decide it" if self.items_needed else ""
            lines[0] = f"INCONCLUSIVE: {self.message}"
            lines.append(f"  undecided: {effect}{need}")
        if self.value is not None:
            n = f" over {self.n_items} items" if self.n_items else ""
            lines.append(f"  value:     {format_value(self.value)}{n}")
        lines.append(f"  bar:       {self.expression}")
        if self.interval is not None:
            lines.append(f"  interval:  95% [{format_value(self.interval[0])}, {format_value(self.interval[1])}]")
        if self.baseline is not None:
            base = format_value(self.baseline_value) if self.baseline_value is not None else "not measured"
            lines.append(f"  baseline:  {self.baseline} = {base}")
        lines += [f"  {line}" for line in self.details]
        if self.worst_items:
            lines.append("  worst failing items:")
            lines += [f"    {item.describe()}" for item in self.worst_items]
        return "\n".join(lines)


def format_value(value: float | None) -> str:
    """Return a value with three decimals, ``n/a`` for a missing or NaN one."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def clip_text(text: str, width: int) -> str:
    """Return the text on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Return a confidence interval for the mean of per-item values.

    Pass/fail values (all 0 or 1) get the Wilson score interval, which stays inside
    [0, 1] and is sensible at 0% and 100%; other values a Student-t interval.

    Args:
        values: one value per item.
        confidence: the interval's coverage.

    Returns:
        ``(low, high)``, or None with fewer than two values of a continuous metric.
    """
    n = len(values)
    if n == 0:
        return None
    if all(v in (0.0, 1.0) for v in values):
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        p = sum(values) / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)
    if n < 2:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy.special import stdtrit  # the t quantile; lazy, and far lighter than scipy.stats

    half = float(stdtrit(n - 1, 0.5 + confidence / 2)) * sd / math.sqrt(n)
    return mean - half, mean + half

