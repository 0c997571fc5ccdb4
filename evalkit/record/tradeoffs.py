"""The sections that weigh one candidate against another beyond the overall comparison.

* ``merge_agreement`` (:mod:`evalkit.parity.checks`): per merged candidate, how often
  it gave the same completion as the adapter it was merged from;
* ``sweep`` (:mod:`evalkit.sweeps.stage`): the forgetting curve of a checkpoint sweep and its pick;
* ``slices`` (:mod:`evalkit.slices.compare`): every metric compared slice by slice, Holm-corrected.

A slice row holds the same :class:`~evalkit.comparison.result.MetricComparison` the
overall comparison does (one type for one metric compared on a set of items), with the
slice's own correction beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from evalkit.bars.spec import BarStatus
from evalkit.comparison.result import MetricComparison, Verdict
from evalkit.record.sections import SectionModel

__all__ = ["CandidateSlices", "DifferingItem",
           "MergeAgreement", "MergeAgreementSection", "SliceRow", "SlicesResult",
           "SlicesSection", "SweepPoint", "SweepResult", "SweepSection"]




class DifferingItem(SectionModel):
    """One item on which the merged model and its adapter answered differently."""

    item_id: str
    merged: str
    """The merged model's completion."""
    source: str
    """The adapter candidate's completion."""


class MergeAgreement(SectionModel):
    """A merged candidate against the candidate that applies its adapter, on the items both answered."""

    source: str
    """The adapter candidate's name."""
    n: int
    """Items both answered."""
    agreeing: int
    """Items with the same completion."""
    agreement_rate: float | None
    """``agreeing / n``; None when they answered no item in common."""
    differing: list[DifferingItem] = Field(default_factory=list)
    """The first differing items (at most 20; the rest are counted in ``n - agreeing``)."""


MergeAgreementSection = dict[str, MergeAgreement]
"""The ``merge_agreement`` section: merged candidate name -> its agreement with its adapter."""


class SweepPoint(SectionModel):
    """One checkpoint of the curve."""

    candidate: str
    step: int | None
    """The training step (None for an adapter folder not named ``checkpoint-N``)."""
    adapter: str
    """The checkpoint's adapter directory."""
    task: float | None
    """The mean task metric (None when not evaluated on it)."""
    benchmark: float | None
    """The mean benchmark metric (None without a benchmark, or not scored)."""
    bar: BarStatus | None = None
    """The status of the ``<benchmark> max_drop`` bar (None without a benchmark or task score)."""
    bar_message: str = ""


class SweepResult(SectionModel):
    """The forgetting curve, the pick and why."""

    name: str
    """The sweep's name (bars on it apply to the pick)."""
    task_metric: str
    benchmark: str | None
    max_drop: str
    """The benchmark drop the rule tolerates (``3%``, ``2pt``)."""
    baseline: str
    baseline_task: float | None
    baseline_benchmark: float | None
    points: list[SweepPoint]
    pick: str | None
    """The picked checkpoint's candidate name (None when no checkpoint passes)."""
    reason: str


SweepSection = SweepResult
"""The ``sweep`` section."""


class SliceRow(SectionModel):
    """One metric on one slice: its comparison with the baseline there, and the slice's verdict.

    ``comparison`` is the :class:`MetricComparison` the run's comparison holds for the
    whole set, computed on the slice's items (its p-value and verdict uncorrected; its flip
    lists left empty, with their counts, since the slice's labels say which items are in
    it). The row adds what only a family of slice tests has: the Holm-adjusted p-value,
    the smallest drop detectable at the corrected level, and the verdict reached with
    them (:func:`evalkit.slices.compare.compare_slices` builds it).
    """

    slice: str
    """The slice's name (``category``)."""
    value: str
    """The slice's label (``billing``)."""
    comparison: MetricComparison
    p_adjusted: float
    """Holm-adjusted over the candidate's family of slice tests."""
    mde: float | None
    """Smallest drop detectable with 80% power at level 0.05 / family size (None: not even a drop to zero is)."""
    verdict: Verdict
    """How it is reached: :mod:`evalkit.slices.compare`."""

    @model_validator(mode="before")
    @classmethod
    def _nest_a_flat_row(cls, data: Any) -> Any:
        # Rows written before the comparison was nested held its fields beside the slice's.
        if not isinstance(data, Mapping) or "comparison" in data or "metric" not in data:
            return data
        own = {key: data[key] for key in ("slice", "value", "p_adjusted", "mde", "verdict") if key in data}
        compared = {key: value for key, value in data.items() if key not in own}
        return {**own, "comparison": {"relative_delta": None, "verdict": data.get("verdict"), **compared}}

    @property
    def sliced_metric(self) -> str:
        """The name bars use: ``exact_match[category=billing]``."""
        return f"{self.comparison.metric}[{self.slice}={self.value}]"


class CandidateSlices(SectionModel):
    """Every slice comparison of one candidate, with the size of its correction family."""

    baseline: str
    family_size: int
    """How many tests Holm's correction spans."""
    rows: list[SliceRow] = Field(default_factory=list)

    @property
    def regressions(self) -> list[SliceRow]:
        """The rows whose verdict is ``regressed``."""
        return [row for row in self.rows if row.verdict == "regressed"]


class SlicesResult(SectionModel):
    """The item labels of every slice and every candidate's slice comparisons."""

    correction: str = "holm"
    alpha: float
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Slice name -> item id -> the item's label."""
    candidates: dict[str, CandidateSlices] = Field(default_factory=dict)


SlicesSection = SlicesResult
"""The ``slices`` section."""
