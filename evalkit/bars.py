"""Quality bars: the suite's ``bars:`` section, parsed at load time and checked against a run.

A bar is one line of the suite, naming a candidate and what it must meet::

    bars:
      - lora: exact_match >= 0.80                      # a threshold on a metric's mean
      - lora: json_valid == 1.0
      - lora: judge.classifier_quality.format >= 4.0   # judge bars count only when calibrated
      - lora: mmlu_mini max_drop 3%                    # against the baseline: 3% relative, 2pt absolute
      - lora: no significant regression on exact_match # the comparison's paired test
      - lora: no significant regression                # ... on every compared metric

Grammar (``METRIC`` is a metric name such as ``field_accuracy.severity``)::

    METRIC (>= | > | <= | < | == | !=) NUMBER[%]
    METRIC max_drop THRESHOLD
    no significant regression [on METRIC]

:class:`BarSpec` validates an entry when the suite loads, so a typo fails in seconds
with the file, line and field. :func:`evaluate_bars` checks bars against a
:class:`~evalkit.results.RunResult` and its comparison (:mod:`evalkit.compare`), and
:func:`record_bars` stores the results in ``run.sections["bars"]``.

Every bar has one of three outcomes, decided by the evidence (``not_counted`` is a
fourth state for bars that cannot count at all: an uncalibrated judge, a candidate
the suite lets be missing):

* a threshold bar (``exact_match >= 0.80``) is ``passed`` or ``failed`` on the mean;
* a drop bar (``max_drop``, ``no significant regression``) is ``failed`` only when
  the paired 95% interval of the delta lies wholly beyond the allowed drop, ``passed``
  only when it lies wholly within it (on enough items), and ``inconclusive`` otherwise,
  with the paired items that would decide it (:func:`evalkit.compare.drop_outcome`).

What an inconclusive bar does is the suite's ``inconclusive:`` choice: ``fail`` (the
default: an undecided gate never reads as a pass; exit 1, the message says it is
undecided and how many items would decide it) or ``warn`` (shown, not gating).
:func:`bar_blocks` is that rule; :func:`evalkit.verdict.run_verdict` (the CLI, the
report) and the pytest plugin ask it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from evalkit.schema import StrictModel
from evalkit.slice_spec import sliced_values
from evalkit.thresholds import Threshold, validate_threshold_text

if TYPE_CHECKING:
    from evalkit.compare import Comparison, MetricComparison
    from evalkit.config import SuiteConfig
    from evalkit.results import CandidateResult, RunResult

BarKind = Literal["threshold", "max_drop", "no_regression"]
Operator = Literal[">=", ">", "<=", "<", "==", "!="]
BarStatus = Literal["passed", "failed", "inconclusive", "not_counted"]
InconclusivePolicy = Literal["fail", "warn"]
DEFAULT_INCONCLUSIVE: InconclusivePolicy = "fail"
"""An undecided bar fails the gate unless the suite says ``inconclusive: warn``."""
_STATUS_OF_VERDICT: dict[str, BarStatus] = {
    "regressed": "failed", "improved": "passed", "no_change": "passed", "inconclusive": "inconclusive",
}


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
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b - _TOLERANCE,
    ">": lambda a, b: a > b + _TOLERANCE,
    "<=": lambda a, b: a <= b + _TOLERANCE,
    "<": lambda a, b: a < b - _TOLERANCE,
    "==": lambda a, b: abs(a - b) <= _TOLERANCE,
    "!=": lambda a, b: abs(a - b) > _TOLERANCE,
}
# A metric, optionally one slice of it: exact_match[category=billing] (see evalkit.slice_spec).
_METRIC = r"[A-Za-z_][\w.\-]*(?:\[[A-Za-z_][\w.\-]*=[^\[\]\s]+\])?"
_THRESHOLD_BAR = re.compile(
    rf"^(?P<metric>{_METRIC})\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?\d*\.?\d+)(?P<pct>%|ms|s)?$"
)
_DROP_BAR = re.compile(rf"^(?P<metric>{_METRIC})\s+max_drop\s+(?P<threshold>\S+)$")
_REGRESSION_BAR = re.compile(rf"^no\s+significant\s+regression(?:\s+on\s+(?P<metric>{_METRIC}))?$")
_GRAMMAR = "METRIC >= NUMBER (or > <= < == !=), METRIC max_drop 3%, or no significant regression on METRIC"
WORST_ITEMS = 5
"""How many failing items a bar's explanation shows."""


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
    from evalkit.slice_spec import split_sliced_metric
    from evalkit.usage_spec import USAGE_METRICS

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
    return bar


SuiteBar = Annotated[BarSpec, AfterValidator(_bar_fits_suite)]
"""A bar inside a suite: also checked against the suite's candidates, baseline and metrics."""


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
        value = _number(self.value)
        if self.baseline_value is not None:
            value = f"{_number(self.baseline_value)} -> {value}"
        parts = [f"{self.item_id}: {value}"]
        if self.reason:
            parts.append(_clip(self.reason, 100))
        if self.prediction:
            parts.append(f"answer {_clip(self.prediction, 60)!r}")
        return " — ".join(parts)


@dataclass
class BarResult:
    """A bar checked against a run.

    Attributes:
        bar: the bar.
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
        policy: the suite's ``inconclusive:`` choice, which decides whether an
            inconclusive outcome blocks.
        items_needed: paired items that would decide an inconclusive drop bar.
    """

    bar: BarSpec
    status: BarStatus
    value: float | None
    message: str
    interval: tuple[float, float] | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    n_items: int = 0
    details: list[str] = field(default_factory=list)
    worst_items: list[ItemEvidence] = field(default_factory=list)
    policy: InconclusivePolicy = DEFAULT_INCONCLUSIVE
    items_needed: int | None = None

    @property
    def blocks(self) -> bool:
        """True when this outcome fails the gate (see :func:`bar_blocks`)."""
        return bar_blocks(self.status, self.policy)

    @property
    def passed(self) -> bool:
        """True when the bar was counted and met."""
        return self.status == "passed"

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
            lines.append(f"  value:     {_number(self.value)}{n}")
        lines.append(f"  bar:       {self.bar.expression}")
        if self.interval is not None:
            lines.append(f"  interval:  95% [{_number(self.interval[0])}, {_number(self.interval[1])}]")
        if self.baseline is not None:
            base = _number(self.baseline_value) if self.baseline_value is not None else "not measured"
            lines.append(f"  baseline:  {self.baseline} = {base}")
        lines += [f"  {line}" for line in self.details]
        if self.worst_items:
            lines.append("  worst failing items:")
            lines += [f"    {item.describe()}" for item in self.worst_items]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready record stored in ``run.sections["bars"]``."""
        return {
            "candidate": self.bar.candidate,
            "expression": self.bar.expression,
            "metric": self.bar.metric,
            "kind": self.bar.kind,
            "passed": self.passed,
            "status": self.status,
            "value": self.value,
            "message": self.message,
            "interval": list(self.interval) if self.interval is not None else None,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "n_items": self.n_items,
            "details": self.details,
            "worst_items": [vars(item) for item in self.worst_items],
            "inconclusive_policy": self.policy,
            "blocks": self.blocks,
            "items_needed": self.items_needed,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> BarResult:
        """Rebuild a result from :meth:`to_dict`'s record (e.g. read back from ``summary.json``)."""
        interval = record.get("interval")
        return cls(
            bar=BarSpec.of(record["candidate"], record["expression"]),
            status=record["status"],
            value=record.get("value"),
            message=record.get("message", ""),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            baseline=record.get("baseline"),
            baseline_value=record.get("baseline_value"),
            n_items=int(record.get("n_items", 0)),
            details=list(record.get("details", [])),
            worst_items=[ItemEvidence(**item) for item in record.get("worst_items", [])],
            policy="warn" if record.get("inconclusive_policy") == "warn" else DEFAULT_INCONCLUSIVE,
            items_needed=record.get("items_needed"),
        )


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _clip(text: str, width: int) -> str:
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


class _BarContext:
    """What evaluating bars reads: the run, the comparison, the judges' calibration."""

    def __init__(self, run: RunResult, comparison: Comparison | None) -> None:
        self.run = run
        self.comparison = comparison

    def candidate(self, name: str) -> CandidateResult | None:
        try:
            return self.run.candidate(name)
        except KeyError:
            return None

    def metric_comparison(self, candidate: str, metric: str) -> MetricComparison | None:
        if self.comparison is None or candidate not in self.comparison.candidates:
            return None
        return self.comparison.candidates[candidate].metrics.get(metric)

    def judge_not_counted(self, metric: str) -> str | None:
        """Return why a judge metric's bar is not counted (uncalibrated or inconsistent judge), or None."""
        parts = metric.split(".", 2)
        if parts[0] != "judge" or len(parts) < 3:
            return None
        section = self.run.sections.get("judges", {}).get(parts[1], {})
        from evalkit.judges.consistency import consistency_not_counted

        if (inconsistent := consistency_not_counted(section, parts[2])) is not None:
            return f"judge '{parts[1]}': {inconsistent}"
        calibration = section.get("calibration")
        if not isinstance(calibration, Mapping) or calibration.get("calibrated", True):
            return None
        kappa = calibration.get("kappa", {}).get(parts[2])
        min_kappa = calibration.get("min_kappa")
        found = f"kappa {_number(kappa)} for '{parts[2]}'" if kappa is not None else "no agreement figure"
        wanted = f" < min_kappa {_number(min_kappa)}" if min_kappa is not None else ""
        return (
            f"judge '{parts[1]}' is not calibrated against human labels ({found}{wanted}); "
            "the bar is not counted until the judge agrees with the labels"
        )


def _worst_items(
    candidate: CandidateResult, metric: str, failing: Callable[[float], bool],
    baseline_values: Mapping[str, float] | None = None,
) -> list[ItemEvidence]:
    """Return the items whose own value fails, worst first (lowest value or largest drop)."""
    values = candidate.values(metric)
    by_id = {item.item_id: item for item in candidate.items}
    evidence: list[tuple[float, ItemEvidence]] = []
    for item_id, value in values.items():
        base = baseline_values.get(item_id) if baseline_values is not None else None
        if not failing(value) if base is None else not failing(value - base):
            continue
        item = by_id.get(item_id)
        score = item.scores.get(metric) if item is not None else None
        evidence.append((
            value - base if base is not None else value,
            ItemEvidence(item_id=item_id, value=value, baseline_value=base,
                         reason=score.reason if score is not None else "",
                         prediction=item.prediction if item is not None else ""),
        ))
    evidence.sort(key=lambda pair: pair[0])
    return [e for _, e in evidence[:WORST_ITEMS]]


def _unmeasurable(bar: BarSpec, ctx: _BarContext) -> BarResult | None:
    """Return a failed result when the bar cannot be evaluated on this run, else None."""
    result = ctx.candidate(bar.candidate)
    if result is None:
        return BarResult(bar, "failed", None,
                         f"candidate '{bar.candidate}' was not part of this run; run it (drop --candidate)")
    if result.status != "ok":
        # Only a candidate the suite or the command lets be missing gets here (planning
        # refuses any other): its bars cannot count, and they never read as passed.
        return BarResult(bar, "not_counted", None, f"candidate '{bar.candidate}' was not evaluated: {result.message}")
    if bar.compares_to_baseline:
        baseline = ctx.candidate(ctx.run.baseline)
        if baseline is None or baseline.status != "ok":
            why = baseline.message if baseline is not None else "it was not part of this run"
            return BarResult(bar, "inconclusive", None,
                             f"baseline '{ctx.run.baseline}' was not evaluated, so nothing decides this bar: {why}")
    if bar.metric is not None and not sliced_values(ctx.run, result, bar.metric):
        measured = ", ".join(result.metric_names()) or "nothing"
        return BarResult(bar, "failed", None,
                         f"'{bar.metric}' was not measured for '{bar.candidate}'; measured: {measured}")
    return None


def _threshold_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    assert bar.metric is not None and bar.op is not None and bar.value is not None
    candidate = ctx.run.candidate(bar.candidate)
    values = list(sliced_values(ctx.run, candidate, bar.metric).values())
    mean = sum(values) / len(values)
    check = _OPERATORS[bar.op]
    met = check(mean, bar.value)
    result = BarResult(bar, "passed" if met else "failed", mean, "", interval=mean_interval(values),
                       n_items=len(values))
    gap = "" if met or bar.op in ("==", "!=") else f" (short by {_number(abs(mean - bar.value))})"
    result.message = (
        f"{bar.metric} = {_number(mean)}, "
        f"{'meets' if met else 'needs'} {bar.op} {_number(bar.value)}{gap}"
    )
    if bar.candidate != ctx.run.baseline:
        result.baseline = ctx.run.baseline
        baseline = ctx.candidate(ctx.run.baseline)
        base_values = list(sliced_values(ctx.run, baseline, bar.metric).values()) if baseline is not None else []
        result.baseline_value = sum(base_values) / len(base_values) if base_values else None
        _add_comparison_detail(result, ctx.metric_comparison(bar.candidate, bar.metric))
    if not met:
        value = bar.value
        result.worst_items = _worst_items(candidate, bar.metric, lambda v: not check(v, value))
    return result


def _add_comparison_detail(result: BarResult, comparison: MetricComparison | None) -> None:
    if comparison is not None:
        result.details.append(
            f"vs baseline: delta {comparison.delta:+.3f}, {comparison.test} test, "
            f"verdict {comparison.verdict}: {comparison.explain()}"
        )


def _bar_comparison(bar: BarSpec, ctx: _BarContext) -> MetricComparison | None:
    """Compare the bar's metric under the bar's own threshold (same pairing and seed as the run's)."""
    from evalkit.compare import compare_pair
    from evalkit.thresholds import ThresholdPolicy

    assert bar.metric is not None and bar.max_drop is not None
    candidate, baseline = ctx.run.candidate(bar.candidate), ctx.run.candidate(ctx.run.baseline)
    seed = ctx.comparison.seed if ctx.comparison is not None else 0
    fresh = compare_pair(baseline, candidate, ThresholdPolicy(default=bar.max_drop), seed,
                         metrics=[bar.metric]).metrics.get(bar.metric)
    if fresh is not None:
        return fresh
    # Per-item values gone (a run read back from its files): the stored comparison, when
    # it used the bar's threshold, is the same computation.
    stored = ctx.metric_comparison(bar.candidate, bar.metric)
    if stored is not None and Threshold.parse(stored.threshold) == Threshold.parse(bar.max_drop):
        return stored
    return None


def _max_drop_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    assert bar.metric is not None and bar.max_drop is not None
    compared = _bar_comparison(bar, ctx)
    if compared is None:
        return BarResult(bar, "inconclusive", None, f"'{bar.metric}' shares no paired items between "
                         f"'{bar.candidate}' and the baseline '{ctx.run.baseline}', so nothing decides the bar",
                         baseline=ctx.run.baseline)
    status = _STATUS_OF_VERDICT[compared.verdict]
    base_value, cand_value = compared.baseline_value, compared.candidate_value
    drop = base_value - cand_value
    relative = f", {-drop / base_value:+.1%} relative" if base_value else ""
    found = {"failed": f"beyond the allowed {bar.max_drop}", "passed": f"within the allowed {bar.max_drop}",
             "inconclusive": f"undecided against the allowed {bar.max_drop}"}[status]
    result = BarResult(
        bar, status, cand_value,
        f"{bar.metric} went {_number(base_value)} -> {_number(cand_value)} ({-drop:+.3f}{relative}): "
        f"{found}; {compared.explain()}",
        interval=(compared.ci_low, compared.ci_high), baseline=ctx.run.baseline, baseline_value=base_value,
        n_items=compared.n_items, items_needed=compared.items_needed,
    )
    result.details.append("interval: 95% CI of the paired delta (candidate - baseline)")
    _add_comparison_detail(result, compared)
    if status != "passed":
        result.worst_items = _worst_items(ctx.run.candidate(bar.candidate), bar.metric, lambda delta: delta < 0,
                                          ctx.run.candidate(ctx.run.baseline).values(bar.metric))
    return result


def _no_regression_result(bar: BarSpec, ctx: _BarContext) -> BarResult:
    if ctx.comparison is None or bar.candidate not in ctx.comparison.candidates:
        return BarResult(bar, "inconclusive", None,
                         f"no comparison of '{bar.candidate}' with the baseline '{ctx.run.baseline}' in this run, "
                         "so nothing decides the bar")
    compared = ctx.comparison.candidates[bar.candidate].metrics
    if bar.metric is not None:
        if bar.metric not in compared:
            return BarResult(bar, "inconclusive", None,
                             f"'{bar.metric}' was not compared; compared: {', '.join(compared) or 'nothing'}")
        compared = {bar.metric: compared[bar.metric]}
    regressed = [m for m in compared.values() if m.verdict == "regressed"]
    undecided = [m for m in compared.values() if m.verdict == "inconclusive"]
    focus = regressed[0] if regressed else undecided[0] if undecided else (
        compared[bar.metric] if bar.metric is not None else None)
    status: BarStatus
    if regressed:
        status, names = "failed", ", ".join(m.metric for m in regressed)
        message = f"regression beyond the allowed drop on {names} against '{ctx.run.baseline}'"
    elif undecided:
        status = "inconclusive"
        message = (f"the data cannot rule out a regression beyond the allowed drop on "
                   f"{', '.join(m.metric for m in undecided)} against '{ctx.run.baseline}'")
    else:
        status = "passed"
        message = f"no regression beyond the allowed drop on {len(compared)} compared metric(s)"
    result = BarResult(bar, status, None, message, baseline=ctx.run.baseline)
    needed = [m.items_needed for m in undecided if m.items_needed]
    result.items_needed = max(needed) if needed else None
    if focus is not None:
        result.value, result.baseline_value = focus.candidate_value, focus.baseline_value
        result.interval, result.n_items = (focus.ci_low, focus.ci_high), focus.n_items
        result.details.append(f"interval: 95% CI of the paired delta on {focus.metric}")
    for metric in compared.values():
        if bar.metric is not None or metric.verdict in ("regressed", "inconclusive"):
            _add_comparison_detail(result, metric)
            result.details[-1] = f"{metric.metric}: {result.details[-1]}"
    if focus is not None and (regressed or undecided):
        candidate = ctx.run.candidate(bar.candidate)
        result.worst_items = _worst_items(candidate, focus.metric, lambda delta: delta < 0,
                                          ctx.run.candidate(ctx.run.baseline).values(focus.metric))
    return result


def evaluate_bar(bar: BarSpec, run: RunResult, comparison: Comparison | None = None) -> BarResult:
    """Check one bar against a run.

    Args:
        bar: the bar.
        run: the run's result.
        comparison: the run's comparison with its baseline; needed by ``max_drop``
            intervals and by ``no significant regression``.

    Returns:
        The bar's result. A bar whose metric was not measured fails and says why; one
        whose baseline or comparison is missing is inconclusive; one whose candidate the
        suite let be missing is not counted.
    """
    from evalkit.sweep_spec import sweep_pick
    from evalkit.usage import USAGE_METRICS, usage_bar

    is_sweep, picked, pick_reason = sweep_pick(run.sections, bar.candidate)
    if is_sweep:
        if picked is None:
            return BarResult(bar, "failed", None, f"the sweep '{bar.candidate}' picked no checkpoint: {pick_reason}")
        bar = bar.model_copy(update={"candidate": picked})
    if bar.metric in USAGE_METRICS:
        return usage_bar(bar, run)
    ctx = _BarContext(run, comparison)
    if (unmeasurable := _unmeasurable(bar, ctx)) is not None:
        return unmeasurable
    if bar.kind == "threshold":
        result = _threshold_result(bar, ctx)
    elif bar.kind == "max_drop":
        result = _max_drop_result(bar, ctx)
    else:
        result = _no_regression_result(bar, ctx)
    if bar.metric is not None and (why := ctx.judge_not_counted(bar.metric)) is not None:
        result.status = "not_counted"
        result.details.insert(0, why)
    from evalkit.judges.failures import failures_exceeded  # standard library only

    sides = [bar.candidate, run.baseline] if bar.compares_to_baseline else [bar.candidate]
    if bar.metric is not None and (failed := failures_exceeded(run.sections, bar.metric, sides)) is not None:
        result.status, result.message = "failed", f"{failed}; {result.message}"
    return result


def run_comparison(run: RunResult, suite: SuiteConfig | None = None) -> Comparison:
    """Return the run's comparison: the stored ``comparison`` section, else computed now."""
    from evalkit.compare import Comparison, compare_candidates

    stored = run.sections.get("comparison")
    if isinstance(stored, Mapping):
        return Comparison.from_dict(dict(stored))
    return compare_candidates(run, suite)


def evaluate_bars(
    bars: Sequence[BarSpec], run: RunResult, comparison: Comparison | None = None,
    suite: SuiteConfig | None = None,
) -> list[BarResult]:
    """Check every bar against a run, in order.

    Args:
        bars: the bars (usually ``suite.bars``).
        run: the run's result.
        comparison: its comparison; default :func:`run_comparison` when a bar needs it.
        suite: the suite, for computing a comparison the run lacks and for its
            ``inconclusive:`` choice (default ``fail``).
    """
    needs_comparison = "comparison" in run.sections or any(bar.compares_to_baseline for bar in bars)
    if comparison is None and needs_comparison:
        comparison = run_comparison(run, suite)
    policy: InconclusivePolicy = getattr(suite, "inconclusive", DEFAULT_INCONCLUSIVE) or DEFAULT_INCONCLUSIVE
    results = [evaluate_bar(bar, run, comparison) for bar in bars]
    for result in results:
        result.policy = policy
    return results


def record_bars(suite: SuiteConfig, run: RunResult) -> list[BarResult]:
    """Check the suite's bars against its run and store them in ``run.sections["bars"]``.

    Bars of candidates left out of the run on purpose (``--candidate``) are not checked.

    Returns:
        The results; the section is left out when no bar applies.
    """
    in_run = {candidate.name for candidate in run.candidates}
    if isinstance(run.sections.get("sweep"), Mapping):
        in_run.add(str(run.sections["sweep"].get("name")))  # bars on the sweep's pick
    bars = [bar for bar in suite.bars if bar.candidate in in_run]
    if not bars:
        return []
    results = evaluate_bars(bars, run, suite=suite)
    run.sections["bars"] = [result.to_dict() for result in results]
    return results


def bars_summary(results: Sequence[BarResult]) -> str:
    """Return ``N bars: P passed, F failed[, I inconclusive][, U not counted]``."""
    counts = {status: sum(r.status == status for r in results)
              for status in ("passed", "failed", "inconclusive", "not_counted")}
    text = f"{len(results)} bars: {counts['passed']} passed, {counts['failed']} failed"
    text += f", {counts['inconclusive']} inconclusive" if counts["inconclusive"] else ""
    return text + (f", {counts['not_counted']} not counted" if counts["not_counted"] else "")


def failed_gates(run: RunResult) -> list[str]:
    """Return one line per blocking bar and per regressed metric of the run (empty: the run passes).

    This is what makes ``evalkit run`` exit 1 (:func:`evalkit.verdict.run_verdict`).
    """
    from evalkit.verdict import run_verdict

    return run_verdict(run).failures
