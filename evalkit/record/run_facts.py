"""The run's smaller facts: what generation cost, how it sampled, where it ran, what it limited.

* ``usage`` (:mod:`evalkit.usage.stage`, written by the runner): per candidate, tokens, wall
  time, latency and money; :class:`ApiUsage` is the same for an API judge, stored in
  its ``judges`` entry;
* ``sampling`` (:mod:`evalkit.checks.sampling`): the settings of ``generation.samples`` > 1,
  the rate metrics and the flaky items;
* ``controls`` (the runner): the candidates run with ``constrain:``;
* ``metric_kinds`` (the runner, from :mod:`evalkit.checks.registry`): what each metric
  was declared as; :class:`MetricDeclaration` is what a check declares when it registers;
* ``executor`` (the runner and the benchmarks stage, from an executor's ``summary()``);
* ``fleet`` (:mod:`evalkit.models.fleet_stage`): what each endpoint of a fleet did;
* ``limit`` (:func:`evalkit.api.run_suite`): what ``--limit`` cut, the
  :class:`RunLimit` that :func:`evalkit.suite.overrides.apply_limit` returns.

The ``Literal`` vocabularies restated here are kept equal to their producers' by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field

from evalkit.record.sections import SectionModel

__all__ = ["METRIC_KIND_NAMES", "ApiUsage", "CandidateUsage", "ConstrainedControl", "ControlsSection",
           "ExecutorSection",
           "ExecutorSummary", "FlakyItem", "FleetEndpoint", "FleetSection", "GenerationUsage", "ItemUsage",
           "LimitSection", "MetricDeclaration", "MetricDeclared", "MetricKind", "MetricKindsSection", "RunLimit",
           "RunLimitRecord", "SamplingSection", "SamplingSummary", "UsageSection"]

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
    """What ``--limit N`` changed (:func:`evalkit.suite.overrides.apply_limit`), and the ``limit`` section."""

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
