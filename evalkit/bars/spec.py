"""The grammar of the suite's ``bars:`` section: :class:`BarSpec` and :data:`SuiteBar`.

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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from evalkit.comparison.thresholds import validate_threshold_text
from evalkit.files.yaml_source import StrictModel
from evalkit.slices.spec import split_sliced_metric
from evalkit.usage.spec import USAGE_METRICS

__all__ = [
    "DEFAULT_INCONCLUSIVE", "OPERATORS", "BarKind", "BarSpec", "BarStatus", "InconclusivePolicy", "Operator",
    "SuiteBar", "bar_blocks", "parse_bar_expression",
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
