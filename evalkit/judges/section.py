"""The ``judges`` section: per judge entry (keyed by its ``name:``, else the rubric's), what it found.

Shape: ``{key: JudgeEntry}``, written by :mod:`evalkit.judges.stage`; read by the bars
and the verdict (:mod:`evalkit.judges.counted`, :mod:`evalkit.judges.failures`), the
report's judges, review and cost views, and the comparison of two runs. Fields are in
the order the stage writes them; keys written only in one mode or only sometimes
(``pairwise``, ``consistency``, ``usage``, a judge's ``base_url``, a consistency entry's
``first_position_rate`` or ``repeats``/``mean_std``) default to None and are left out of
the JSON form by dumping with ``exclude_unset=True``. Defaults elsewhere let the
hand-written sections of tests and older runs read: readers have always tolerated an
entry with only its ``calibration``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import Field

from evalkit.record.run_facts import ApiUsage
from evalkit.record.sections import SectionModel

__all__ = ["JUDGES", "Calibration", "Consistency", "CriterionAgreement", "CriterionStats", "FailureCount",
           "JudgeEntry", "JudgeIdentity", "JudgeTally", "JudgesSection", "PairwiseRates",
           "TranscriptMessage", "TranscriptTurn"]

JUDGES = "judges"


class JudgeIdentity(SectionModel):
    """Which judge: its provider and model, and the endpoint when the suite named one."""

    provider: str
    model: str
    base_url: str | None = None
    """Only when the suite set one."""


class CriterionAgreement(SectionModel):
    """Judge-human agreement on one criterion (:func:`evalkit.judges.calibration.agreement` computes it)."""

    n: int
    """Examples judged (judge errors left out)."""
    kappa: float | None
    """Quadratic-weighted Cohen's kappa, None when undefined."""
    spearman: float | None
    """Spearman's rho, None when undefined."""
    exact: float | None
    """Share of examples where the rounded judge score equals the human's."""
    within_one: float | None
    """Share where they differ by at most one level."""
    self_consistency: float | None = None
    """Mean std of repeated judgments (None without repeats)."""


class Calibration(SectionModel):
    """The judge measured against human labels.

    Without labels but with ``min_kappa`` set, the entry is ``kappa: {}``, ``calibrated:
    false``, ``n: 0`` (no ``errors``, no ``agreement``).
    """

    kappa: dict[str, float] = Field(default_factory=dict)
    """criterion -> weighted kappa, for the criteria where it is defined."""
    calibrated: bool
    min_kappa: float | None = None
    n: int = 0
    """Labelled examples."""
    errors: int | None = None
    """Examples the judge failed to judge; only when there were labels."""
    agreement: dict[str, CriterionAgreement] | None = None
    """Only when there were labels."""


class CriterionStats(SectionModel):
    """One candidate's scores on one criterion (``preference`` in pairwise mode)."""

    mean: float | None
    std: float | None = None
    n: int | None = None
    n_failed: int = 0
    """Judged items whose judgment failed (scored as a failure, not dropped)."""


class FailureCount(SectionModel):
    """One candidate's failed judgments against the judge's tolerance (:mod:`evalkit.judges.failures`)."""

    n: int
    n_failed: int
    rate: float
    max_failures: float
    exceeded: bool


class PairwiseRates(SectionModel):
    """A candidate's pairwise rates against the baseline (all None, ``n`` 0, when no pair was decided)."""

    win_rate: float | None = None
    tie_rate: float | None = None
    loss_rate: float | None = None
    inconsistent_rate: float | None = None
    consistency: float | None = None
    first_position_rate: float | None = None
    n: int = 0


class TranscriptMessage(SectionModel):
    """One message sent to the judge, its content clipped."""

    role: str
    content: str


class TranscriptTurn(SectionModel):
    """One question to the judge about an item and its reply (:func:`evalkit.judges.stage.transcript`)."""

    label: str
    messages: list[TranscriptMessage]
    reply: str


class Consistency(SectionModel):
    """How far the judge agrees with itself (:mod:`evalkit.judges.consistency`)."""

    kind: Literal["position", "self"]
    rate: dict[str, float | None]
    """criterion (``preference`` for position) -> share of items that agreed; None when none was measured."""
    n: dict[str, int]
    min_consistency: float | None
    consistent: bool | None
    """None when no ``min_consistency`` is set."""
    below: list[str]
    items: dict[str, list[str]]
    """criterion -> ``candidate:item`` ids that disagreed (the first 50)."""
    items_total: dict[str, int]
    first_position_rate: float | None = None
    """Position consistency only."""
    repeats: int | None = None
    """Self-consistency only."""
    mean_std: dict[str, float | None] | None = None
    """Self-consistency only."""


class JudgeTally(SectionModel):
    """Counts over a batch of the judge's tasks (:func:`evalkit.judges.judging.count_outcome` counts into it)."""

    tasks: int = 0
    errors: int = 0
    request_retries: int = 0
    malformed_retries: int = 0
    cache_hits: int = 0
    error_examples: list[str] = Field(default_factory=list)


class JudgeEntry(SectionModel):
    """One judge entry of the suite: the judge, its calibration and consistency, and its scores."""

    rubric: str | None = None
    judge: JudgeIdentity | None = None
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    calibration: Calibration | None = None
    """None when the judge was not checked against human labels."""
    per_candidate: dict[str, dict[str, CriterionStats]] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    """candidate -> items whose judgment failed."""
    failures: dict[str, FailureCount] = Field(default_factory=dict)
    pairwise: dict[str, PairwiseRates] | None = None
    """Pairwise mode only."""
    transcripts: dict[str, dict[str, list[TranscriptTurn]]] = Field(default_factory=dict)
    """candidate -> item id -> every question asked about it."""
    consistency: Consistency | None = None
    """Pairwise mode always; pointwise with ``repeats`` > 1."""
    tally: JudgeTally | None = None
    usage: ApiUsage | None = None
    """API judges only: requests, tokens, latency and money."""


JudgesSection: TypeAlias = dict[str, JudgeEntry]
"""judge entry key -> what it found."""
