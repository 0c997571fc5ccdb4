"""The ``judges`` section: per judge entry (keyed by its ``name:``, else the rubric's), what it found.

Shape: ``{key: JudgeEntry}``, written by :mod:`evalkit.judges.stage`; read by the bars
and the verdict (whether scores count and how failed judgments count: below), the
report's judges, review and cost views, and the comparison of two runs. Fields are in
the order the stage writes them; keys written only in one mode or only sometimes
(``pairwise``, ``consistency``, ``usage``, a judge's ``base_url``, a consistency entry's
``first_position_rate`` or ``repeats``/``mean_std``) default to None and are left out of
the JSON form by dumping with ``exclude_unset=True``. Defaults elsewhere let the
hand-written sections of tests and older runs read: readers have always tolerated an
entry with only its ``calibration``.

Also in this module:

* Whether a judge's scores count: one rule for the bars, the regression verdict and the report.
* Failed judgments count: how they are scored, counted, and when they fail a judge's bars.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from pydantic import Field

from evalkit.bars.result import format_value
from evalkit.record.run_facts import ApiUsage
from evalkit.record.sections import SectionModel

__all__ = [
    "Calibration",
    "Consistency",
    "CriterionAgreement",
    "CriterionStats",
    "FailureCount",
    "JudgeEntry",
    "JudgeIdentity",
    "JudgeTally",
    "JudgesSection",
    "PairwiseRates",
    "TranscriptMessage",
    "TranscriptTurn",
    "judge_metric_not_counted",
]


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
    """One candidate's failed judgments against the judge's tolerance."""

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
    """Counts over a batch of the judge's tasks (:func:`evalkit.judges.calibration.count_outcome` counts into it)."""

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


# Whether a judge's scores count: one rule for the bars, the regression verdict and the report.
#
# A judge whose agreement with the human labels is below ``min_kappa`` (uncalibrated), or
# whose self- or position-consistency is below ``min_consistency``, produces scores that
# decide nothing: a bar on them is *not counted*, and neither a regression nor an
# undecided comparison on them moves a run's verdict. The scores are still shown.

def consistency_not_counted(consistency: Consistency | None, criterion: str) -> str | None:
    """Return why bars on a judge criterion do not count (below ``min_consistency``), or None.

    Args:
        consistency: the judge entry's consistency (None: not measured).
        criterion: the criterion (``preference`` for pairwise).
    """
    if consistency is None or consistency.min_consistency is None or criterion not in consistency.below:
        return None
    rate = consistency.rate.get(criterion) or 0.0
    what = "position consistency (both orders agree)" if consistency.kind == "position" else "self-consistency"
    return (f"its {what} on '{criterion}' is {rate:.2f} < min_consistency "
            f"{consistency.min_consistency:.2f}; the bar is not counted until the judge agrees with itself")


def judge_metric_not_counted(judges: JudgesSection, metric: str) -> str | None:
    """Return why a judge metric (``judge.<rubric>.<criterion>``) does not count, or None when it counts.

    Args:
        judges: the run's ``judges`` section, typed (:meth:`evalkit.record.results.RunResult.section`).
        metric: any metric name; metrics that are not a judge's always count.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key, criterion = parts[1], parts[2]
    entry = judges.get(key)
    if entry is None:
        return None
    if (inconsistent := consistency_not_counted(entry.consistency, criterion)) is not None:
        return f"judge '{key}': {inconsistent}"
    calibration = entry.calibration
    if calibration is None or calibration.calibrated:
        return None
    kappa = calibration.kappa.get(criterion)
    min_kappa = calibration.min_kappa
    found = f"kappa {format_value(kappa)} for '{criterion}'" if kappa is not None else "no agreement figure"
    wanted = f" < min_kappa {format_value(min_kappa)}" if min_kappa is not None else ""
    return (
        f"judge '{key}' is not calibrated against human labels ({found}{wanted}); "
        "the bar is not counted until the judge agrees with the labels"
    )


# Failed judgments count: how they are scored, counted, and when they fail a judge's bars.
#
# A judgment *fails* when the judge could not be asked (transport failure after the
# bounded retries: 429, 5xx, timeouts), or answered with nothing usable after the parse
# retries (malformed JSON, an off-scale score, a missing criterion), or could not take
# the item at all (its prompt too long). Such an item is never dropped:
#
# * it is **scored as a failure**: the criterion's minimum (1 on the 1..5 scale) in
#   pointwise mode, a loss (preference 0) in pairwise mode, with the reason
#   ``judgment failed: ...``. So it enters the judge's means, its bars, its paired
#   comparison with the baseline and the report's lowest items: an output that breaks
#   the judge cannot escape the judge's gate by breaking it;
# * it is **counted**: ``run.sections["judges"][name]["failures"][candidate]`` holds
#   ``n``, ``n_failed``, ``rate``, ``max_failures`` and ``exceeded``, and each
#   criterion's statistics in ``per_candidate`` carry ``n_failed``;
# * beyond the judge's tolerance (``max_failures``, default 5% of the judged items) a
#   bar on that judge's metrics **fails**, whatever its value: the numbers are then
#   more the judge's outage than the candidate's quality. A bar that compares with the
#   baseline fails when either side exceeds it.
#
# Light to import (the section's schema, no judge clients): :mod:`evalkit.bars.evaluate` reads it.

DEFAULT_MAX_FAILURES = 0.05
FAILED_REASON = "judgment failed"


def failed_reason(error: str) -> str:
    """Return the reason recorded on a score given for a failed judgment."""
    return f"{FAILED_REASON} (scored as a failure): {error or 'no usable judgment'}"


def failure_entry(n: int, n_failed: int, max_failures: float) -> dict[str, Any]:
    """Return one candidate's failure counts for the judge section."""
    rate = n_failed / n if n else 0.0
    return FailureCount(n=n, n_failed=n_failed, rate=rate, max_failures=max_failures,
                        exceeded=rate > max_failures + 1e-12).model_dump(mode="json")


def failures_exceeded(judges: JudgesSection, metric: str, candidates: list[str]) -> str | None:
    """Return why a bar on ``metric`` fails for too many failed judgments, or None.

    Args:
        judges: the run's ``judges`` section, typed.
        metric: the bar's metric; only ``judge.<name>.<criterion>`` metrics are affected.
        candidates: the candidate and, for a bar that compares, the baseline.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key = parts[1]
    entry = judges.get(key)
    failures = entry.failures if entry is not None else {}
    for name in candidates:
        count = failures.get(name)
        if count is not None and count.exceeded:
            return (f"judge '{key}': {count.n_failed} of {count.n} judgments of '{name}' failed "
                    f"({count.rate:.0%} > max_failures {count.max_failures:.0%}); the bar "
                    "fails until the judge answers (see the judge's error examples)")
    return None
