"""What a comparison is: the verdict of each metric, per candidate, their JSON form, and the thresholds.

These are the results :mod:`evalkit.comparison.compare` produces and everything downstream reads
(the bars, the verdict, the tables, the report, the pytest plugin):
:class:`MetricComparison` for one metric of one candidate (how its verdict is reached is
in :mod:`evalkit.comparison.paired`), :class:`CandidateComparison` for every metric of one
candidate, and :class:`Comparison` for a run's candidates, stored in
the run's ``comparison`` section by :meth:`Comparison.to_dict` and read back by
:func:`evalkit.record.results.comparison_section`. A comparison of two runs also says what changed between
each pair's two sides (:class:`IdentityDiff`, built by :mod:`evalkit.comparison.compare`).

Also here:

* Regression thresholds (``3%`` relative to the baseline, ``2pt`` absolute) and significance levels:
  :class:`Threshold`, :class:`ThresholdPolicy`, :func:`validate_threshold_text`, :data:`CONFIDENCE`, :data:`ALPHA`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import SerializerFunctionWrapHandler, model_serializer

from evalkit.record.sections import adapter

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "DEFAULT_THRESHOLD",
    "JUDGE_PREFIX",
    "POWER",
    "TOLERANCE",
    "CandidateComparison",
    "Comparison",
    "IdentityChange",
    "IdentityDiff",
    "IdentityKind",
    "MetricComparison",
    "MetricKind",
    "TestName",
    "Threshold",
    "ThresholdPolicy",
    "Verdict",
    "is_significant",
    "validate_threshold_text",
]


# Regression thresholds (``3%`` relative to the baseline, ``2pt`` absolute) and significance levels.
#
# Light like the rest of this module (the standard library, pydantic and the sections' base),
# so that loading a suite file validates its thresholds without importing the statistics
# (numpy, scipy) that compare with them.

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
        here, so that this module stays light and every other one may import it.
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


if TYPE_CHECKING:
    import pandas as pd


Verdict = Literal["improved", "regressed", "no_change", "inconclusive"]
MetricKind = Literal["binary", "judge", "continuous", "ordinal"]
TestName = Literal["mcnemar", "wilcoxon", "bootstrap"]
IdentityKind = Literal["model", "adapter", "prompt", "generation", "data", "versions", "paths"]

# Float noise must not turn a drop of exactly the threshold into a regression.
TOLERANCE = 1e-9


@dataclass
class MetricComparison:
    """One metric of one candidate against the baseline, on the items both have.

    Attributes:
        metric: the metric's name.
        kind: ``binary`` (pass/fail), ``judge`` (judge scores), ``ordinal`` (ranked levels a
            check declared) or ``continuous``.
        n_items: paired items (present on both sides).
        baseline_value: the baseline's mean over the paired items.
        candidate_value: the candidate's mean over the paired items.
        delta: ``candidate_value - baseline_value``.
        relative_delta: ``delta / baseline_value`` (None when the baseline is 0).
        ci_low: lower end of the 95% interval on ``delta`` the verdict is decided with:
            Tango's score interval for pass/fail metrics, a paired bootstrap otherwise.
        ci_high: upper end of that interval.
        p_value: the paired test's two-sided p-value.
        test: ``mcnemar`` (asymptotic: the score test Tango's interval inverts),
            ``wilcoxon`` or ``bootstrap``.
        threshold: the tolerated drop (``3%`` or ``2pt``).
        verdict: how it is reached is in :mod:`evalkit.comparison.paired`.
        items_needed: paired items for 80% power against a drop of the threshold's size
            (set when the verdict is ``inconclusive``).
        pass_to_fail: ids of items the baseline passed and the candidate failed.
        fail_to_pass: ids of items the baseline failed and the candidate passed.
        pass_to_fail_total / fail_to_pass_total: how many items flipped in all, set when
            the id lists hold only the first ones (a run read from summary.json, which
            keeps the first :data:`evalkit.record.results.FLIP_IDS_KEPT`); None when the
            lists are whole. :attr:`n_pass_to_fail` and :attr:`n_fail_to_pass` count either way.
        higher_is_better: the metric's declared direction; when False (bits per byte) a
            rise is the drop the threshold bounds. The delta and its interval are always
            candidate - baseline, as measured.
        detectable_drop: the smallest mean drop these items detect with 80% power at
            alpha 0.05 (:func:`evalkit.comparison.paired.detectable_drop`); when it exceeds the
            allowed drop, the set is too small to decide the threshold.
    """

    metric: str
    kind: MetricKind
    n_items: int
    baseline_value: float
    candidate_value: float
    delta: float
    relative_delta: float | None
    ci_low: float
    ci_high: float
    p_value: float
    test: TestName
    threshold: str
    verdict: Verdict
    items_needed: int | None = None
    pass_to_fail: list[str] = field(default_factory=list)
    fail_to_pass: list[str] = field(default_factory=list)
    higher_is_better: bool = True
    pass_to_fail_total: int | None = None
    fail_to_pass_total: int | None = None

    @property
    def n_pass_to_fail(self) -> int:
        """Items that flipped pass -> fail, in all (``pass_to_fail`` may list only the first)."""
        return len(self.pass_to_fail) if self.pass_to_fail_total is None else self.pass_to_fail_total

    @property
    def n_fail_to_pass(self) -> int:
        """Items that flipped fail -> pass, in all (``fail_to_pass`` may list only the first)."""
        return len(self.fail_to_pass) if self.fail_to_pass_total is None else self.fail_to_pass_total
    detectable_drop: float | None = None

    @property
    def undecidable(self) -> bool:
        """True when these items cannot detect a drop of the threshold's size (see ``detectable_drop``)."""
        if self.detectable_drop is None:
            return False
        return self.detectable_drop > Threshold.parse(self.threshold).allowed_drop(self.baseline_value) + TOLERANCE

    def decidability(self) -> str:
        """Return one sentence on whether the set's size can decide the threshold, with the smallest detectable drop."""
        if self.detectable_drop is None:
            return ""
        allowed = Threshold.parse(self.threshold).allowed_drop(self.baseline_value)
        relative = f" ({self.detectable_drop / abs(self.baseline_value):.1%} of the baseline's value)" \
            if self.baseline_value else ""
        can = "cannot decide" if self.undecidable else "can decide"
        return (f"{self.n_items} paired items {can} {self.threshold} (allowed {allowed:.4f}): the smallest "
                f"detectable {'drop' if self.higher_is_better else 'rise'} is {self.detectable_drop:.4f}{relative}, "
                f"at alpha {ALPHA:g} two-sided and 80% power")

    @property
    def gain(self) -> float:
        """The delta in the better direction: positive when the candidate is better."""
        return self.delta if self.higher_is_better else -self.delta

    @property
    def gain_interval(self) -> tuple[float, float]:
        """The 95% interval of :attr:`gain` (low, high)."""
        if self.higher_is_better:
            return self.ci_low, self.ci_high
        return -self.ci_high, -self.ci_low

    @property
    def significant(self) -> bool:
        """True when the test and the interval agree the delta is not 0."""
        return is_significant(self.p_value, self.ci_low, self.ci_high)

    def explain(self) -> str:
        """Return one sentence saying why the verdict is what it is (in the metric's direction)."""
        drop = -self.gain
        gain_low, _ = self.gain_interval
        # Lower-is-better metrics (bits per byte) worsen by rising: say so in their own words.
        dropped, a_drop = ("dropped", "a drop") if self.higher_is_better else ("rose (lower is better)", "a rise")
        allowed = Threshold.parse(self.threshold).allowed_drop(self.baseline_value)
        sig = f"p={self.p_value:.3g}, 95% CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        if self.verdict == "regressed":
            return (f"{dropped} {drop:.4f}: the whole 95% CI is beyond the {allowed:.4f} allowed by "
                    f"{self.threshold}, significant ({sig})")
        if self.verdict == "improved":
            better = "improved" if self.higher_is_better else "fell (lower is better)"
            return f"{better} by {self.gain:.4f}, significant ({sig})"
        if self.verdict == "inconclusive":
            need = f"; about {self.items_needed} paired items would be needed" if self.items_needed else ""
            if self.undecidable:
                need += f"; {self.decidability()}"
            if drop > allowed + TOLERANCE and not self.significant:
                return f"{dropped} {drop:.4f} (> {allowed:.4f} allowed) but not significant ({sig}){need}"
            if drop > allowed + TOLERANCE:
                return (f"{dropped} {drop:.4f} (> {allowed:.4f} allowed), but the 95% CI reaches back within "
                        f"{self.threshold} ({sig}){need}")
            if -gain_low > allowed + TOLERANCE:
                would = (f"; ~{self.items_needed:,} would" if self.items_needed else
                         f"; none can: {self.threshold} of a baseline of {self.baseline_value:.3f} allows no "
                         f"{a_drop.removeprefix('a ')} at all" if allowed <= TOLERANCE else "")
                return (f"{self.n_items} paired items cannot rule out {a_drop} of {self.threshold}{would}: "
                        f"{a_drop} of {max(drop, 0.0) + 0.0:.4f} is within it, but the 95% CI reaches {a_drop} of "
                        f"{-gain_low:.4f} (> {allowed:.4f} allowed) ({sig})"
                        + (f"; {self.decidability()}" if self.undecidable else ""))
            return (f"{self.n_items} items cannot show {a_drop} of {self.threshold} with 80% power "
                    f"({sig}){need}")
        return f"no {a_drop.removeprefix('a ')} beyond {self.threshold}: the whole 95% CI is within it ({sig})"


@dataclass
class IdentityChange:
    """One recorded fact that differs between the two sides of a pair compared across runs.

    Attributes:
        kind: what it is part of: ``model``, ``adapter``, ``prompt``, ``generation``
            (settings, device, dtype, backend options), ``data`` (dataset and named files),
            ``versions`` (evalkit, Python, libraries) or ``paths`` (where the model or
            adapter was read from).
        field: where the run records it: an identity field (``prompt_hash``), a resolved
            setting (``generation.temperature``, ``runtime.dtype``), ``dataset_hash``,
            ``files.NAME`` or ``versions.NAME``.
        before: its value in the baseline run (None: absent there).
        after: its value in the candidate run (None: absent there).
    """

    kind: IdentityKind
    field: str
    before: str | None
    after: str | None


@dataclass
class IdentityDiff:
    """What changed between a candidate and its baseline in another run (see :mod:`evalkit.comparison.compare`).

    Attributes:
        summary: the change in words: ``prompt changed``, ``model and versions changed``,
            or ``identity unchanged``.
        changes: every recorded fact that differs.
        prompt_diff: the unified diff of the two prompts' templates (system, user,
            expected, few-shot count); empty when they are equal or either is not recorded.
        notes: what could not be compared and why (a run that records no resolved suite).
    """

    summary: str
    changes: list[IdentityChange] = field(default_factory=list)
    prompt_diff: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class CandidateComparison:
    """Every metric of one candidate against its baseline.

    Attributes:
        candidate: the candidate's name.
        baseline: the baseline candidate's name.
        metrics: metric -> comparison.
        identity: what changed since the baseline's run (a comparison of two runs only).
        status: the candidate's standing under the candidate run's bars, as
            :func:`evalkit.bars.verdict.run_verdict` names it (``deployable``, ``blocked``,
            ``undecided``, ``no_bars``, ``baseline``), ``blocked`` too when a metric of
            this comparison regressed; None when not judged (the comparison a run
            stores is made before its bars are checked: the run's verdict says it).
    """

    candidate: str
    baseline: str
    metrics: dict[str, MetricComparison] = field(default_factory=dict)
    identity: IdentityDiff | None = None
    status: str | None = None

    @property
    def regressions(self) -> list[MetricComparison]:
        """The metrics whose verdict is ``regressed``."""
        return [m for m in self.metrics.values() if m.verdict == "regressed"]

    @property
    def deployable(self) -> bool | None:
        """True only when it has counted bars, every one passed, and nothing regressed; None when not judged."""
        return None if self.status is None else self.status == "deployable"

    @model_serializer(mode="wrap")
    def _with_standing(self, fields: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Write ``deployable`` beside the fields once judged, so readers need not apply the rule again."""
        data: dict[str, Any] = fields(self)
        if self.deployable is not None:
            data["deployable"] = self.deployable
        return data


@dataclass
class Comparison:
    """Candidates against a baseline, within one run or across two runs.

    Attributes:
        baseline: the baseline candidate's name; empty when two runs are compared
            candidate by candidate (each :class:`CandidateComparison` names its own).
        candidates: candidate name -> its comparison.
        baseline_run_id: the run the baseline's results come from.
        candidate_run_id: the run the candidates' results come from.
        seed: the bootstrap seed.
        notes: why something could not be compared (a skipped baseline...).
    """

    baseline: str
    candidates: dict[str, CandidateComparison] = field(default_factory=dict)
    baseline_run_id: str = ""
    candidate_run_id: str = ""
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """True when a metric of some candidate regressed (``evalkit compare`` exits 1)."""
        return bool(self.regressions)

    @property
    def deployable(self) -> bool | None:
        """True when something was compared and every candidate is deployable; None when not judged.

        A candidate is deployable by the one rule (:attr:`CandidateComparison.deployable`):
        no regression alone never makes it so.
        """
        standings = [c.deployable for c in self.candidates.values()]
        if None in standings:
            return None
        return bool(standings) and all(standings)

    @property
    def regressions(self) -> list[tuple[str, MetricComparison]]:
        """Every (candidate, metric comparison) whose verdict is ``regressed``."""
        return [(name, m) for name, c in self.candidates.items() for m in c.regressions]

    @model_serializer(mode="wrap")
    def _with_verdicts(self, fields: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Write ``regressed`` (and ``deployable`` once judged) beside the fields, for readers of the JSON."""
        data: dict[str, Any] = fields(self)
        data["regressed"] = self.regressed
        if self.deployable is not None:
            data["deployable"] = self.deployable
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in the run's ``comparison`` section."""
        return cast(dict[str, Any], adapter(Comparison).dump_python(self, mode="json"))

    def to_pandas(self) -> pd.DataFrame:
        """Return one row per candidate and metric (index ``candidate, metric``).

        The columns: the candidate's baseline, every field of :class:`MetricComparison`
        and the flip counts.
        """
        import pandas as pd  # loaded only when a frame is asked for

        rows = []
        for candidate in self.candidates.values():
            for metric in candidate.metrics.values():
                record = asdict(metric)
                record["n_pass_to_fail"] = metric.n_pass_to_fail
                record["n_fail_to_pass"] = metric.n_fail_to_pass
                rows.append({"candidate": candidate.candidate, "baseline": candidate.baseline, **record})
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=["candidate", "metric"]).set_index(["candidate", "metric"])
        return frame.set_index(["candidate", "metric"])


def is_significant(p_value: float, ci_low: float, ci_high: float) -> bool:
    """Return True when p < 0.05 and the interval excludes 0: the test and the interval agree."""
    return p_value < ALPHA and (ci_low > 0.0 or ci_high < 0.0)
