"""The grammar of the suite's ``bars:`` section (:class:`BarSpec`, :data:`SuiteBar`) and what a bar found.

A bar is one line of the suite, naming a candidate and what it must meet::

    bars:
      - lora: exact_match >= 0.80                      # a threshold on a metric's mean
      - lora: mmlu_mini max_drop 3%                    # against the baseline: 3% relative, 2pt absolute
      - lora: no significant regression on exact_match # the comparison's paired test

Grammar (``METRIC`` is a metric name such as ``field_accuracy.severity``)::

    METRIC (>= | > | <= | < | == | !=) NUMBER[%]
    METRIC max_drop THRESHOLD
    no significant regression [on METRIC]

:class:`BarSpec` validates an entry when the suite loads, so a typo fails in seconds
with the file, line and field; :data:`SuiteBar` also checks it against the suite's
candidates, baseline and metrics. :func:`bar_blocks` is the one rule of which outcome
fails the gate. This module imports only leaves and specs (the suite config imports
it); :mod:`evalkit.bars.evaluate` evaluates bars against a run.

Also here:

* What checking a bar found: :class:`BarResult` (also the entry a run stores), its evidence
  (:class:`ItemEvidence`), and the mean's interval (:func:`mean_interval`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from evalkit.comparison.result import validate_threshold_text
from evalkit.files.yaml_source import StrictModel
from evalkit.record.sections import SectionModel
from evalkit.slices.spec import split_sliced_metric
from evalkit.usage.spec import USAGE_METRICS

__all__ = [
    "DEFAULT_INCONCLUSIVE",
    "OPERATORS",
    "BarKind",
    "BarResult",
    "BarSpec",
    "BarStatus",
    "InconclusivePolicy",
    "ItemEvidence",
    "Operator",
    "SuiteBar",
    "bar_blocks",
    "clip_text",
    "format_value",
    "mean_interval",
    "parse_bar_expression",
]


BarKind = Literal["threshold", "max_drop", "no_regression"]
Operator = Literal[">=", ">", "<=", "<", "==", "!="]
BarStatus = Literal["passed", "failed", "inconclusive", "not_counted"]
InconclusivePolicy = Literal["fail", "warn"]
DEFAULT_INCONCLUSIVE: InconclusivePolicy = "fail"
"""An undecided bar fails the gate unless the suite says ``inconclusive: warn``."""
def bar_blocks(status: str, policy: str = DEFAULT_INCONCLUSIVE) -> bool:
    """Return True when a bar with this outcome fails the gate (exit 1, a failed test).

    The one rule the CLI, the report and the pytest plugin share: a failed bar blocks;
    an inconclusive one blocks unless the suite's ``inconclusive:`` is ``warn``; a passed
    or not-counted bar does not.

    Args:
        status: the bar's outcome (``passed``, ``failed``, ``inconclusive``, ``not_counted``).
        policy: the suite's ``inconclusive:`` choice, ``fail`` or ``warn``.
    """
    return status == "failed" or (status == "inconclusive" and policy != "warn")

# Means of pass/fail items are ratios like 4/5; compare with a little slack so that
# floating-point rounding never decides a bar.
_TOLERANCE = 1e-9
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b - _TOLERANCE,
    ">": lambda a, b: a > b + _TOLERANCE,
    "<=": lambda a, b: a <= b + _TOLERANCE,
    "<": lambda a, b: a < b - _TOLERANCE,
    "==": lambda a, b: abs(a - b) <= _TOLERANCE,
    "!=": lambda a, b: abs(a - b) > _TOLERANCE,
}
# A metric, optionally one slice of it: exact_match[category=billing] (see evalkit.slices.spec).
_METRIC = r"[A-Za-z_][\w.\-]*(?:\[[A-Za-z_][\w.\-]*=[^\[\]\s]+\])?"
_THRESHOLD_BAR = re.compile(
    rf"^(?P<metric>{_METRIC})\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?\d*\.?\d+)(?P<pct>%|ms|s)?$"
)
_DROP_BAR = re.compile(rf"^(?P<metric>{_METRIC})\s+max_drop\s+(?P<threshold>\S+)$")
_REGRESSION_BAR = re.compile(rf"^no\s+significant\s+regression(?:\s+on\s+(?P<metric>{_METRIC}))?$")
_GRAMMAR = "METRIC >= NUMBER (or > <= < == !=), METRIC max_drop 3%, or no significant regression on METRIC"
def _bar_error(message: str) -> PydanticCustomError:
    # A custom error type keeps pydantic's "Value error, " prefix out of the one-line message.
    return PydanticCustomError("bar", message)


def parse_bar_expression(expression: str) -> dict[str, Any]:
    """Parse a bar expression into its kind, metric and limit.

    Args:
        expression: e.g. ``exact_match >= 0.80`` or ``mmlu_mini max_drop 3%``.

    Returns:
        The :class:`BarSpec` fields ``kind``, ``metric``, ``op``, ``value``, ``max_drop``.

    Raises:
        ValueError: the expression follows none of the forms; the message shows them.
    """
    text = " ".join(expression.split())
    if match := _THRESHOLD_BAR.match(text):
        # 80% is 0.8; latency bars may say 2s or 250ms (seconds are the unit).
        value = float(match["value"]) / {"%": 100.0, "ms": 1000.0}.get(match["pct"] or "", 1.0)
        return {"kind": "threshold", "metric": match["metric"], "op": match["op"], "value": value,
                "max_drop": None}
    if match := _DROP_BAR.match(text):

        try:
            validate_threshold_text(match["threshold"])
        except ValueError as exc:
            raise ValueError(f"bar '{text}': {exc}") from None
        return {"kind": "max_drop", "metric": match["metric"], "op": None, "value": None,
                "max_drop": match["threshold"]}
    if match := _REGRESSION_BAR.match(text):
        return {"kind": "no_regression", "metric": match["metric"], "op": None, "value": None,
                "max_drop": None}
    raise ValueError(f"cannot read bar '{text}'; write {_GRAMMAR}")


class BarSpec(StrictModel):
    """One quality bar: a candidate and the expression it must meet.

    Written in the suite as ``- CANDIDATE: EXPRESSION``; the other fields are parsed
    from the expression.
    """

    candidate: str
    """The candidate the bar applies to."""
    expression: str
    """The bar as written, e.g. ``exact_match >= 0.80``."""
    kind: BarKind
    """``threshold`` (a metric's mean against a number), ``max_drop`` or ``no_regression``
    (both against the baseline)."""
    metric: str | None
    """The metric; None only for ``no significant regression`` on every metric."""
    op: Operator | None = None
    """The comparison of a threshold bar."""
    value: float | None = None
    """The number of a threshold bar (``80%`` is read as 0.8)."""
    max_drop: str | None = None
    """The largest drop a ``max_drop`` bar allows: ``3%`` relative or ``2pt`` absolute."""

    @model_validator(mode="before")
    @classmethod
    def _from_suite_entry(cls, entry: Any) -> Any:
        if isinstance(entry, BarSpec):
            return entry
        derived = {"kind", "metric", "op", "value", "max_drop"}
        if isinstance(entry, Mapping) and {"candidate", "expression"} <= set(entry):
            # The long form (also what model_dump gives back): the expression decides.
            unknown = sorted(set(entry) - {"candidate", "expression"} - derived)
            if unknown:
                raise _bar_error(f"unknown key '{unknown[0]}' in a bar; write `- CANDIDATE: EXPRESSION`")
            candidate, expression = entry["candidate"], entry["expression"]
        elif isinstance(entry, Mapping) and len(entry) == 1:
            ((candidate, expression),) = entry.items()
        else:
            raise _bar_error("write a bar as `- CANDIDATE: EXPRESSION`, e.g. `- lora: exact_match >= 0.80`")
        if not isinstance(expression, str):
            raise _bar_error(
                f"the bar for '{candidate}' must be a text expression like `exact_match >= 0.80`, "
                f"not {expression!r}"
            )
        try:
            parsed = parse_bar_expression(expression)
        except ValueError as exc:
            raise _bar_error(str(exc)) from None
        return {"candidate": str(candidate), "expression": " ".join(expression.split()), **parsed}

    @property
    def compares_to_baseline(self) -> bool:
        """True for bars judged on the comparison with the baseline."""
        return self.kind != "threshold"

    @property
    def label(self) -> str:
        """``candidate: expression``, the bar's name in tables and test ids."""
        return f"{self.candidate}: {self.expression}"

    @classmethod
    def of(cls, candidate: str, expression: str) -> BarSpec:
        """Build a bar in code, exactly as ``- candidate: expression`` in a suite.

        Raises:
            pydantic.ValidationError: the expression is not a bar.
        """
        return cls.model_validate({candidate: expression})


def _metric_roots(data: Mapping[str, Any]) -> set[str] | None:
    """Return the metric names (and prefixes) the suite's checks, judges and benchmarks produce.

    None when the sections failed validation themselves (their error is reported instead).
    """
    if "checks" not in data or "benchmarks" not in data or "judges" not in data:
        return None
    roots: set[str] = set()
    for spec in data["checks"]:
        roots.add(spec.name)
        custom = spec.options.get("name")  # e.g. a regex check named by its options
        if isinstance(custom, str):
            roots.add(custom)
    for spec in data["benchmarks"]:
        # A benchmark's results are stored under its `name:` when it has one, else its task.
        if isinstance(spec, Mapping):
            task = spec.get("name") or spec.get("task")
        else:
            task = getattr(spec, "metric", None) or getattr(spec, "task", None)
        if isinstance(task, str):
            roots.add(task)
    if data["judges"]:
        roots.add("judge")
    return roots


def _bar_fits_suite(bar: BarSpec, info: ValidationInfo) -> BarSpec:
    """Check a bar against the rest of the suite: its candidate, baseline and metric exist."""
    data = info.data
    candidates = [c.name for c in data.get("candidates", [])]
    if not candidates:
        return bar  # the candidates section failed validation; that error is reported instead
    sweep = data.get("sweep")
    if sweep is not None:
        candidates.append(sweep.name)  # the sweep's name stands for the checkpoint it picks
    if bar.candidate not in candidates:
        raise _bar_error(f"no candidate named '{bar.candidate}'; choose one of {', '.join(candidates)}")
    baseline = data.get("baseline") or candidates[0]
    if bar.compares_to_baseline and bar.candidate == baseline:
        raise _bar_error(
            f"'{bar.expression}' compares with the baseline, and '{bar.candidate}' is the baseline; "
            "put the bar on another candidate"
        )
    if bar.metric in USAGE_METRICS:
        if bar.kind != "threshold":
            raise _bar_error(f"'{bar.metric}' is a usage figure: write it as `{bar.metric} <= NUMBER`")
        return bar
    metric = bar.metric
    if metric is not None and (sliced := split_sliced_metric(metric)) is not None:
        metric, slice_name = sliced[0], sliced[1]
        slices = [spec.name for spec in data.get("slices", [])]
        if bar.kind != "threshold":
            raise _bar_error(f"a slice bar is a threshold: write `{bar.metric} >= NUMBER`")
        if slice_name not in slices:
            raise _bar_error(f"no slice named '{slice_name}'; add it under `slices:` "
                             f"(slices: {', '.join(slices) or 'none'})")
    roots = _metric_roots(data)
    if roots is not None and metric is not None and not any(
        metric == root or metric.startswith(f"{root}.") for root in roots
    ):
        known = ", ".join(sorted(roots)) or "none (add checks, judges or benchmarks)"
        raise _bar_error(f"no check, judge or benchmark measures '{bar.metric}'; measured: {known}")
    for spec in data.get("benchmarks", []):
        listed = getattr(spec, "candidates", None)
        if listed is not None and metric == spec.metric and bar.candidate not in listed and bar.candidate != baseline:
            raise _bar_error(f"benchmark '{spec.metric}' scores only {', '.join(listed)} (its `candidates:`); "
                             f"add '{bar.candidate}' there, or put the bar on one of them")
    return bar


SuiteBar = Annotated[BarSpec, AfterValidator(_bar_fits_suite)]
"""A bar inside a suite: also checked against the suite's candidates, baseline and metrics."""


# What checking a bar found: :class:`BarResult` (also the entry a run stores), its evidence, and the mean's interval.
#
# Data only (it imports the bar grammar and nothing above it), so the measurements that
# check their own bars (:mod:`evalkit.usage.stage`) and :mod:`evalkit.bars.evaluate` share it.

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
    gives the stored form, and :func:`evalkit.record.results.bars_section` reads it.

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
