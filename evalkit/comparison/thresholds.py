"""Regression thresholds (``3%`` relative to the baseline, ``2pt`` absolute) and significance levels.

A leaf module (standard library only), so that loading a suite file validates its
thresholds without importing the statistics (numpy, scipy) that compare with them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

__all__ = [
    "ALPHA", "CONFIDENCE", "DEFAULT_THRESHOLD", "JUDGE_PREFIX", "POWER", "Threshold", "ThresholdPolicy",
    "validate_threshold_text"
]


DEFAULT_THRESHOLD = "3%"
JUDGE_PREFIX = "judge."
_THRESHOLD_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|pt)\s*$")


@dataclass(frozen=True)
class Threshold:
    """The largest tolerated drop of a metric.

    Attributes:
        amount: the number written (3 for ``3%``, 2 for ``2pt``).
        relative: True for ``%`` (of the baseline's value), False for ``pt`` (points:
            hundredths of the metric's unit, so ``2pt`` on a 0-1 rate is 0.02).
    """

    amount: float
    relative: bool

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Parse ``"3%"`` (relative) or ``"2pt"`` (absolute points).

        Raises:
            ValueError: the text is neither; the message shows both forms.
        """
        match = _THRESHOLD_PATTERN.match(str(text))
        if match is None:
            raise ValueError(
                f"threshold {text!r} is not understood; write a relative drop like '3%' "
                "or an absolute one in points like '2pt' (0.02 on a 0-1 metric)"
            )
        amount = float(match.group(1))
        if match.group(2) == "%" and amount >= 100:
            raise ValueError(f"threshold {text!r}: a relative drop must be below 100%")
        return cls(amount=amount, relative=match.group(2) == "%")

    def allowed_drop(self, baseline_value: float) -> float:
        """Return the tolerated absolute drop from ``baseline_value``."""
        if self.relative:
            return abs(baseline_value) * self.amount / 100.0
        return self.amount / 100.0

    def __str__(self) -> str:
        number = f"{self.amount:g}"
        return f"{number}%" if self.relative else f"{number}pt"


def validate_threshold_text(text: str) -> str:
    """Return ``text`` when it is a valid threshold (for config validators).

    Raises:
        ValueError: it is not; pydantic turns this into a field-named config error.
    """
    Threshold.parse(text)
    return text


@dataclass
class ThresholdPolicy:
    """Which threshold applies to which metric.

    Attributes:
        default: the suite's ``max_drop`` (``3%`` unless set).
        per_metric: metric name or glob (``field_accuracy.*``) -> threshold text. An
            exact name wins over a glob; among globs the longest pattern wins.
    """

    default: str = DEFAULT_THRESHOLD
    per_metric: dict[str, str] = field(default_factory=dict)

    def threshold_text(self, metric: str) -> str:
        """Return the threshold text that applies to ``metric``."""
        if metric in self.per_metric:
            return self.per_metric[metric]
        globs = [p for p in self.per_metric if any(c in p for c in "*?[") and fnmatch.fnmatchcase(metric, p)]
        if globs:
            return self.per_metric[max(globs, key=len)]
        return self.default

    def threshold(self, metric: str) -> Threshold:
        """Return the parsed threshold for ``metric``."""
        return Threshold.parse(self.threshold_text(metric))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form (stored with each run)."""
        return {"default": self.default, "per_metric": dict(self.per_metric)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdPolicy:
        """Rebuild a policy from :meth:`to_dict`'s output."""
        return cls(default=str(data.get("default", DEFAULT_THRESHOLD)),
                   per_metric={str(k): str(v) for k, v in dict(data.get("per_metric", {})).items()})

    @classmethod
    def from_suite(cls, suite: Any) -> ThresholdPolicy:
        """Collect the thresholds a suite sets, in precedence order.

        Suite ``thresholds:`` entries come first; then a benchmark spec's ``max_drop``
        (for its metric: the spec's ``name``, else its ``task``); then a judge spec's ``max_drop`` (for
        ``judge.<name>.*``, the spec's ``name`` or its rubric file's stem); then the
        suite's ``max_drop``.

        ``suite`` is a :class:`evalkit.suite.config.SuiteConfig` (or anything with its
        ``max_drop``, ``thresholds``, ``benchmarks`` and ``judges``); it is not imported
        here, so that this module stays a leaf every other one may import.
        """
        if suite is None:
            return cls()
        per_metric: dict[str, str] = {}
        for spec in suite.benchmarks:
            metric = _spec_field(spec, "name") or _spec_field(spec, "task")
            drop = _spec_field(spec, "max_drop")
            if metric and drop:
                per_metric[str(metric)] = str(drop)
        for judge in suite.judges:
            drop = _spec_field(judge, "max_drop")
            name = _spec_field(judge, "name") or _rubric_stem(_spec_field(judge, "rubric"))
            if name and drop:
                per_metric[f"{JUDGE_PREFIX}{name}.*"] = str(drop)
        per_metric.update(getattr(suite, "thresholds", {}) or {})
        return cls(default=suite.max_drop, per_metric=per_metric)


def _spec_field(spec: Any, name: str) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name)
    return getattr(spec, name, None)


def _rubric_stem(rubric: Any) -> str | None:
    if not rubric:
        return None
    return PurePath(str(rubric)).stem


# The significance levels every paired test and verdict uses: a leaf of constants.
CONFIDENCE = 0.95
"""Coverage of every interval evalkit reports."""
ALPHA = 1.0 - CONFIDENCE
"""Two-sided significance level of every paired test."""
POWER = 0.80
"""Power the sample-size estimates (``items_needed``) are computed for."""
