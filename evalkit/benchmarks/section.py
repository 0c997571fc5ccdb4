"""The ``benchmarks`` section: each candidate's score on each benchmark of the suite.

Shape: ``{candidate: {metric: BenchmarkScore}}``, written by
:mod:`evalkit.benchmarks.stage` (one entry per candidate that ran and benchmark entry,
keyed by the entry's ``metric`` name) and read by the report's capability view and the
comparison of two runs. Keys that are only sometimes written (``data_source``,
``same_as``, ``cached``, ``vs_baseline``) are None when absent; a producer dumps with
``exclude_unset=True`` so they stay absent, as they always were. Defaults on the other
keys let older and hand-written sections (the test scaffolding's) read.
"""

from __future__ import annotations

from typing import TypeAlias

from pydantic import Field

from evalkit.record.sections import SectionModel

__all__ = ["BaselineDrop", "BenchmarkScore", "BenchmarksSection", "DataSource", "SubjectDrop",
           "SubjectResult"]



class SubjectResult(SectionModel):
    """Accuracy on one subject (or subtask) of a benchmark: the record of a measured score.

    The stage builds it from :class:`evalkit.benchmarks.evaluate.SubjectScore` (what
    scoring measured, every figure present, cached with ``asdict``) in
    :func:`evalkit.benchmarks.stage.outcome_entry`. The record is a model of its own
    because it also reads entries written by hand, without ``stderr`` or ``n``, and
    writes them back with the same keys.
    """

    acc: float
    stderr: float | None = None
    """Absent in sections written by hand (the report's test runs); the stage always writes it."""
    n: int | None = None


class DataSource(SectionModel):
    """Where an MMLU task's questions came from: the package, its version, the file and its sha256."""

    package: str
    version: str
    file: str
    sha256: str


class SubjectDrop(SectionModel):
    """One subject's accuracy change from the baseline to a candidate (a negative ``delta`` is a drop).

    Built by :func:`evalkit.benchmarks.stage.subject_drops`; ``n`` is the questions the
    candidate answered there.
    """

    subject: str
    baseline_acc: float
    acc: float
    delta: float
    n: int


class BaselineDrop(SectionModel):
    """A candidate's change on one benchmark against the baseline (:func:`evalkit.benchmarks.stage.drop_summary`)."""

    baseline: str
    baseline_acc: float
    acc: float
    delta: float
    relative_delta: float | None
    """None when the baseline's accuracy is 0."""
    max_drop: str
    """The threshold in effect, as the suite wrote it (``3%``, ``2pt``)."""
    worst_subjects: list[SubjectDrop]
    """Only subjects that got worse, the worst first."""
    higher_is_better: bool | None = None
    """The metric's direction; absent (None) in older runs, where it was always higher."""
    detectable_drop: float | None = None
    """The smallest drop these paired items detect (alpha 0.05 two-sided, power 0.80): from
    the baseline's per-item variance for pass/fail items, the paired spread otherwise; when it
    exceeds the allowed drop, the benchmark cannot decide its threshold at this size."""


class BenchmarkScore(SectionModel):
    """One candidate's result on one benchmark; fields in the order the stage writes them."""

    acc: float
    """The score: the mean of the per-item values (accuracy for MMLU, bits per byte for general text)."""
    stderr: float | None = None
    metric: str | None = None
    """lm-eval's per-item metric (``acc``, ``acc_norm``, ``bits_per_byte``...)."""
    formulation: str | None = None
    """``letter`` or ``cloze`` for MMLU; None for another lm-eval task."""
    num_fewshot: int | None = None
    fewshot_source: str | None = None
    n: int | None = None
    """Items scored."""
    lm_eval_task: str | None = None
    scorer: str | None = None
    """evalkit's lm-eval model that scored it: ``evalkit-hf`` or ``evalkit-vllm``."""
    dtype: str | None = None
    seconds: float | None = None
    subjects: dict[str, SubjectResult] = Field(default_factory=dict)
    data_source: DataSource | None = None
    """Only on MMLU entries."""
    same_as: str | None = None
    """Only when the entry was copied from an earlier candidate with the same weights."""
    cached: bool | None = None
    """Only when the entry came from the results cache (then ``True``)."""
    vs_baseline: BaselineDrop | None = None
    """Only on non-baseline candidates whose baseline scored the same benchmark."""
    higher_is_better: bool | None = None
    """Only when the metric's lower values are better (then ``False``): bits per byte, perplexity."""
    lm_eval_scores: dict[str, float] | None = None
    """Only for rolling log-likelihood tasks: lm-eval's own corpus-level aggregates
    (``word_perplexity``, ``byte_perplexity``, ``bits_per_byte``); ``acc`` is then the mean
    of the per-document values the comparison pairs."""


BenchmarksSection: TypeAlias = dict[str, dict[str, BenchmarkScore]]
"""candidate -> benchmark metric name -> its score."""
