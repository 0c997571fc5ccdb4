"""The run stage that evaluates a suite's ``benchmarks:`` on every candidate.

It is the ``benchmarks`` stage of :data:`evalkit.stages.STAGES`, imported when a suite
runs (so ``evalkit --help`` never imports lm-eval). For every candidate that
ran, and every benchmark entry, it:

1. scores the candidate through lm-eval's ``simple_evaluate`` with
   :class:`~evalkit.benchmarks.lm.EvalkitLM` on the run's HF backend, so a base
   model's weights are loaded once for generation and benchmarks alike, and an adapter
   is switched on those weights, not loaded as a second model;
2. stores per-item values in ``CandidateResult.item_values[<metric>]`` (MMLU: item id
   ``<subject>/<index>`` -> 0.0/1.0; general text: ``<genre>/<nn>`` -> bits per byte),
   where the comparison finds them for its paired statistics and the ``max_drop``
   verdict, and declares each benchmark metric's kind and direction in
   ``run.sections["metric_kinds"]`` (bits per byte: continuous, lower is better), so the
   comparison tests and orients it as declared, never by its values;
3. writes ``run.sections["benchmarks"][candidate][metric]``: lm-eval's overall score
   and its stderr, the formulation and few-shot setting, per-subject accuracy, and,
   for candidates other than the baseline, the drop and the subjects that dropped most.

Candidates that are the same weights (a prompt variant of the base, say) are scored
once: benchmarks ignore the suite's task prompt, so their results are equal by
construction, and the entry says ``same_as``. Outcomes are cached across runs
(:mod:`evalkit.benchmarks.evaluate`): a candidate whose weights, dtype and task are unchanged
is not scored again, its model is not even loaded, and the entry says ``cached``.

When the run has a Ray executor, each benchmark is scored on its workers instead
(below: MMLU in question-range shards, another task whole),
by the HF backend each worker already holds, and merged on the driver into the same
entry a local run writes; only the driver writes the results cache and the run.

Also in this module:

* Where a candidate lost general capability: its drop against the baseline, per subject.
* Benchmark shards on the run's Ray workers, merged into exactly a local run's outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from evalkit.benchmarks.evaluate import (
    BenchmarkOutcome,
    BenchmarkTask,
    benchmark_cache,
    benchmark_key,
    evaluate_benchmark,
    mean_stderr,
    mmlu_task_yaml,
    prepare_benchmark,
    subject_scores,
)
from evalkit.benchmarks.probes import write_task
from evalkit.benchmarks.spec import BaselineDrop, BenchmarkScore, DataSource, Formulation, SubjectDrop, SubjectResult
from evalkit.comparison.result import Threshold
from evalkit.errors import BenchmarkError
from evalkit.files.yaml_source import json_objects
from evalkit.models.backend import Backend, ModelVariant, create_backend, resolve_dtype
from evalkit.models.sources import adapter_fingerprint, resolve_model
from evalkit.progress import Progress
from evalkit.record.results import CandidateResult, RunResult
from evalkit.stages import SuiteInputs, register_stage
from evalkit.store.cache import JsonCache
from evalkit.suite.config import CandidateConfig, SuiteConfig

# Names other modules import from here though they are defined elsewhere.
__all__ = ["SubjectDrop"]


# Where a candidate lost general capability: its drop against the baseline, per subject.
#
# The verdict (regressed or not, with paired statistics) is the comparison's
# (:mod:`evalkit.comparison.compare`, from the per-item values); this module says *where* the drop
# is: the overall change and the subjects that dropped most, for the benchmarks section
# of the run summary and the report.

def subject_drops(
    baseline: Mapping[str, Mapping[str, Any]], candidate: Mapping[str, Mapping[str, Any]],
    higher_is_better: bool = True,
) -> list[SubjectDrop]:
    """Return every subject both measured, the worst change first (ties by name).

    Args:
        baseline: subject -> ``{"acc": float, "n": int}`` (the section's ``subjects``).
        candidate: the same for the candidate.
        higher_is_better: the metric's direction: when False, a rise is the worst change.
    """
    drops = [
        SubjectDrop(
            subject=subject,
            baseline_acc=float(baseline[subject]["acc"]),
            acc=float(scores["acc"]),
            delta=float(scores["acc"]) - float(baseline[subject]["acc"]),
            n=int(scores["n"]),
        )
        for subject, scores in candidate.items()
        if subject in baseline
    ]
    sign = 1.0 if higher_is_better else -1.0
    return sorted(drops, key=lambda d: (sign * d.delta, d.subject))


def drop_summary(
    baseline_name: str,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    max_drop: str,
    worst: int = 5,
    higher_is_better: bool = True,
) -> BaselineDrop:
    """Summarise a candidate's change on one benchmark against the baseline.

    Args:
        baseline_name: the baseline candidate.
        baseline: the baseline's benchmark entry (``acc``, ``subjects`` ...).
        candidate: the candidate's benchmark entry.
        max_drop: the threshold in effect (``3%`` or ``2pt``), recorded beside the drop.
        worst: how many of the most-dropped subjects to list.
        higher_is_better: the metric's direction (bits per byte: False, a rise is worse).

    Returns:
        The entry's ``vs_baseline`` record; only subjects that got worse are listed in
        ``worst_subjects``, the worst first.
    """
    base_acc = float(baseline["acc"])
    acc = float(candidate["acc"])
    drops = subject_drops(baseline.get("subjects", {}), candidate.get("subjects", {}), higher_is_better)
    sign = 1.0 if higher_is_better else -1.0
    summary = BaselineDrop(
        baseline=baseline_name,
        baseline_acc=base_acc,
        acc=acc,
        delta=acc - base_acc,
        relative_delta=(acc - base_acc) / base_acc if base_acc else None,
        max_drop=max_drop,
        worst_subjects=[d for d in drops[:worst] if sign * d.delta < 0],
    )
    if not higher_is_better:  # set only when lower is better, so older sections keep their keys
        summary.higher_is_better = False
    return summary


def describe_drop(candidate: str, task: str, summary: BaselineDrop) -> str:
    """Return one line saying how much a candidate dropped and where most.

    Example: ``lora: mmlu_mini 0.262 -> 0.241 (-2.1pt, -8.0%); worst: anatomy -20.0pt, ...``;
    a metric whose lower values are better is written in its own units and says so
    (``lora: general_text 0.912 -> 1.020 (+0.1080, +11.8%, lower is better); worst: dialogue +0.1500``).
    """
    relative = summary.relative_delta
    lower_better = summary.higher_is_better is False

    def change_of(delta: float) -> str:
        return f"{delta:+.4f}" if lower_better else f"{delta * 100:+.1f}pt"

    change = change_of(summary.delta) + (f", {relative * 100:+.1f}%" if relative is not None else "")
    change += ", lower is better" if lower_better else ""
    worst = ", ".join(f"{d.subject} {change_of(d.delta)}" for d in summary.worst_subjects[:3])
    line = f"{candidate}: {task} {summary.baseline_acc:.3f} -> {summary.acc:.3f} ({change})"
    return f"{line}; worst: {worst}" if worst else line


# Benchmark shards on the run's Ray workers, merged into exactly a local run's outcome.
#
# When a run has an executor (:mod:`evalkit.executors`), the benchmarks stage scores a
# candidate's benchmark there instead of on the driver:
#
# * **MMLU** (the bundled tasks) is cut into *question ranges*: consecutive runs of the
#   task's ``data.jsonl``, in its order (subject by subject), balanced by question count,
#   at most two per worker. Each shard is its own lm-eval task: the same YAML (prompt,
#   choices, metric) over its lines, whose few-shot prefixes are already rendered in, so
#   every question is shown and scored as in the whole task. The worker writes the shard's
#   task directory itself (a worker need not see the driver's ``$EVALKIT_HOME``).
# * **Any other lm-eval task** is one unit, evaluated whole on a worker: its aggregation
#   (groups, weighted means, corpus metrics) is lm-eval's own, so it is not cut.
#
# A worker scores a unit with :class:`~evalkit.benchmarks.lm.EvalkitLM` on its own HF
# backend (the one that generated, holding the model already) through
# :func:`~evalkit.benchmarks.evaluate.evaluate_benchmark`. The driver merges MMLU shards
# in the whole task's document order and aggregates with lm-eval's own functions
# (``mean``, ``mean_stderr``) over the same list a local ``simple_evaluate`` aggregates,
# so accuracy and stderr are the same floats, and per-subject figures are computed as
# :func:`~evalkit.benchmarks.evaluate.collect_outcome` computes them. What can differ is
# batch composition (a shard's requests are batched among themselves), which changes no
# greedy log-likelihood comparison beyond float rounding: on float32 the tests find every
# item equal; bf16 near-ties may flip, as generation's may.

if TYPE_CHECKING:
    from evalkit.executors import Executor

BackendOf = Callable[[str], Backend]
Record = dict[str, Any]
SHARDS_PER_WORKER = 2
"""MMLU shards per worker: two let a fast worker take a slow one's share."""


def task_records(task: BenchmarkTask) -> list[Record]:
    """Return an MMLU task's questions as its ``data.jsonl`` holds them, in lm-eval's document order."""
    assert task.include_path is not None and task.formulation is not None, "MMLU tasks only"
    data = task.include_path / "data.jsonl"
    return [record for _, record in json_objects(data, "reinstall evalkit", BenchmarkError)]


def split_ranges(count: int, shards: int) -> list[range]:
    """Cut ``count`` documents into at most ``shards`` consecutive ranges, sizes differing by at most one."""
    shards = max(1, min(shards, count))
    size, extra = divmod(count, shards)
    ranges, start = [], 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        ranges.append(range(start, end))
        start = end
    return ranges


def write_shard_task(task: BenchmarkTask, records: Sequence[Record]) -> BenchmarkTask:
    """Write (once) the lm-eval task of one MMLU shard under ``$EVALKIT_HOME`` and return it.

    The shard is named after the whole task and a digest of its lines, so it is written
    once per machine and reused; the YAML is the whole task's but for its data.
    """
    assert task.formulation is not None, "MMLU tasks only"
    formulation = cast("Formulation", task.formulation)
    shard = write_task(f"{task.task_name}_shard", records, dict,
                       lambda name, data_file: mmlu_task_yaml(name, data_file, formulation))
    return replace(task, task_name=shard.task_name, include_path=shard.include_path)


def score_unit(backend_of: BackendOf, task: BenchmarkTask, variant: ModelVariant,
               records: Sequence[Record] | None) -> BenchmarkOutcome:
    """Score one unit on a worker: an MMLU shard (``records``) or a whole task (``records`` None)."""
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import EvalkitLM

    unit_task = write_shard_task(task, records) if records is not None else task
    backend: Any = backend_of("hf")  # the worker's HFBackend, holding the model generation loaded
    lm = EvalkitLM(backend, variant, batch_size=task.spec.batch_size)
    return evaluate_benchmark(unit_task, lm)


def worker_scoring_dtype(backend_of: BackendOf, requested: str) -> tuple[str, str]:
    """Return, on a worker, the dtype ``requested`` resolves to there and its device type."""
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import scoring_dtype

    backend: Any = backend_of("hf")
    device = backend.device
    return scoring_dtype(requested, device), str(device.type)


def ask_one_worker(executor: Executor, function: Callable[..., Any], *args: Any) -> Any:
    """Run one small unit on a worker and return its value."""
    answers: dict[int, Any] = {}
    executor.map_units(function, [args], answers.__setitem__, lambda _: "a benchmark's dtype query")
    return answers[0]


def merge_outcomes(task: BenchmarkTask, shards: Sequence[Sequence[Record]], outcomes: Sequence[BenchmarkOutcome],
                   seconds: float) -> BenchmarkOutcome:
    """Merge MMLU shard outcomes into the whole task's, as one ``simple_evaluate`` would report it.

    Items are laid out in the whole task's document order (shard by shard), the overall
    score and stderr come from lm-eval's own ``mean`` and ``mean_stderr`` over that list
    (lm-eval reports no stderr for a single item; evalkit's 0.0 stands in, as locally),
    and every subject's figures are computed as a local outcome computes them.

    Raises:
        BenchmarkError: a shard's outcome lacks one of its questions.
    """
    from lm_eval.api.metrics import mean
    from lm_eval.api.metrics import mean_stderr as lm_eval_mean_stderr

    items: dict[str, float] = {}
    by_subject: dict[str, list[float]] = {}
    for records, outcome in zip(shards, outcomes, strict=True):
        for record in records:
            item_id = str(record["id"])
            if item_id not in outcome.items:
                raise BenchmarkError(f"benchmark '{task.spec.task}': a shard came back without question {item_id}")
            items[item_id] = outcome.items[item_id]
            by_subject.setdefault(str(record["subject"]), []).append(outcome.items[item_id])
    values = list(items.values())
    if not values:
        raise BenchmarkError(f"task '{task.task_name}' produced no items")
    stderr = lm_eval_mean_stderr(values) if len(values) > 1 else mean_stderr(values)
    return BenchmarkOutcome(acc=float(mean(values)), stderr=float(stderr), metric=outcomes[0].metric, items=items,
                            subjects=subject_scores(by_subject), seconds=seconds)


def score_on_workers(executor: Executor, task: BenchmarkTask, variant: ModelVariant, label: str,
                     progress: Progress) -> tuple[BenchmarkOutcome, int]:
    """Score one candidate's benchmark on the executor's workers (see the module docstring).

    Returns:
        The merged outcome, and how many units (shards) it took.

    A shard whose worker dies is retried on another (the executor's rule); one that
    raises a :class:`~evalkit.errors.BenchmarkError` fails the run as a local one would.
    """
    started = time.perf_counter()
    if task.formulation is None:
        shards: list[list[Record]] = []
        payloads: list[tuple[Any, ...]] = [(task, variant, None)]
    else:
        records = task_records(task)
        shards = [records[r.start:r.stop] for r in split_ranges(len(records),
                                                                SHARDS_PER_WORKER * executor.worker_count())]
        payloads = [(task, variant, shard) for shard in shards]
    outcomes: dict[int, BenchmarkOutcome] = {}
    progress.start(f"{label}: {len(payloads)} shard(s) on {executor.worker_count()} worker(s)", len(payloads))

    def keep(index: int, outcome: BenchmarkOutcome) -> None:
        outcomes[index] = outcome
        progress.advance(1)

    executor.map_units(score_unit, payloads, keep,
                       lambda index: f"benchmark shard {index + 1}/{len(payloads)} of {label}")
    progress.finish()
    seconds = time.perf_counter() - started
    if not shards:
        return replace(outcomes[0], seconds=seconds), 1
    return merge_outcomes(task, shards, [outcomes[i] for i in range(len(shards))], seconds), len(shards)



class WorkerScoring:
    """The benchmarks stage's handle on the run's workers: dtype queries (once per dtype) and shard counts.

    Args:
        executor: the run's executor.
    """

    def __init__(self, executor: Executor) -> None:
        """Ask nothing yet; the first :meth:`dtype` call starts the workers if generation did not."""
        self.executor = executor
        self.shards = 0
        self._dtypes: dict[str, tuple[str, str]] = {}

    def dtype(self, requested: str) -> tuple[str, str]:
        """Return (dtype, device type) that ``requested`` resolves to on the workers."""
        if requested not in self._dtypes:
            self._dtypes[requested] = ask_one_worker(self.executor, worker_scoring_dtype, requested)
        return self._dtypes[requested]

    def score(self, task: BenchmarkTask, variant: ModelVariant, label: str, progress: Progress) -> BenchmarkOutcome:
        """Score one benchmark on the workers (:func:`score_on_workers`) and count its shards."""
        outcome, shards = score_on_workers(self.executor, task, variant, label, progress)
        self.shards += shards
        return outcome


# The run stage that evaluates a suite's ``benchmarks:`` on every candidate.

def requested_dtype(config: CandidateConfig, task: BenchmarkTask) -> str:
    """Return the scoring dtype asked for: the spec's, else the candidate's (``auto`` resolves per device)."""
    return task.spec.dtype if task.spec.dtype != "auto" else config.dtype


def benchmark_variant(
    suite: SuiteConfig, config: CandidateConfig, candidate: CandidateResult, task: BenchmarkTask, device: Any,
    dtype: str | None = None,
) -> ModelVariant:
    """Return the model variant a candidate is scored with on one benchmark.

    The adapter is the one the run recorded for the candidate, under the name generation
    gave it (the candidate's), so the backend reuses the adapter it already loaded. The
    dtype is the spec's, else the candidate's, else bf16 where the hardware has it
    natively (see ``scoring_dtype``); ``dtype``, when given, is that choice already made
    (on the Ray workers' device).
    """
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import scoring_dtype

    requested = requested_dtype(config, task)
    identity = candidate.identity
    adapter = Path(identity.adapter) if identity is not None and identity.adapter else None
    return ModelVariant(
        model=resolve_model(config.model, suite.base_dir),
        adapter=adapter,
        adapter_name=config.name if adapter else None,
        dtype=dtype or scoring_dtype(requested, device),
    )


def outcome_entry(task: BenchmarkTask, outcome: BenchmarkOutcome, dtype: str,
                  scorer: str = "evalkit-hf") -> BenchmarkScore:
    """Return the section entry for one candidate on one benchmark (its schema: :class:`BenchmarkScore`).

    An MMLU entry records its data source (package, version, data file's sha256).
    """
    from evalkit.benchmarks.mmlu_data import mmlu_data_source

    entry = BenchmarkScore(
        acc=outcome.acc,
        stderr=outcome.stderr,
        metric=outcome.metric,
        formulation=task.formulation,
        num_fewshot=task.spec.num_fewshot,
        fewshot_source=task.fewshot_source,
        n=len(outcome.items),
        lm_eval_task=task.task_name,
        scorer=scorer,
        dtype=dtype,
        seconds=round(outcome.seconds, 2),
        subjects={
            subject: SubjectResult(acc=score.acc, stderr=score.stderr, n=score.n)
            for subject, score in outcome.subjects.items()
        },
    )
    if task.formulation is not None:
        entry.data_source = DataSource(**mmlu_data_source())
    if not outcome.higher_is_better:
        entry.higher_is_better = False
    if outcome.lm_eval_scores:
        entry.lm_eval_scores = dict(outcome.lm_eval_scores)
    return entry


def metric_declaration(task: BenchmarkTask, outcome: BenchmarkOutcome) -> dict[str, Any]:
    """Return a benchmark metric's ``metric_kinds`` entry: its kind and direction.

    The kind is the task's when it knows it (MMLU: binary; general text: continuous);
    another lm-eval task's is read off its values once, here (all 0/1: binary). The
    direction is lm-eval's declaration for the metric.
    """
    kind = task.kind or ("binary" if all(v in (0.0, 1.0) for v in outcome.items.values()) else "continuous")
    return {"kind": kind, "higher_is_better": outcome.higher_is_better}


def entry_json(entry: BenchmarkScore | BaselineDrop) -> dict[str, Any]:
    """Return an entry's JSON form as the section stores it: only the keys that were set."""
    return entry.model_dump(mode="json", exclude_unset=True)


def _local_backend(backends: dict[str, Backend], name: Scorer) -> Any:
    # The run's backend holds the models (or the engine) generation loaded; create it if
    # generation did not need one (another backend, or everything cached). The runner closes it.
    if name not in backends:
        backends[name] = create_backend(name)
    return backends[name]


Scorer = Literal["hf", "vllm"]
SCORERS: dict[Scorer, str] = {"hf": "evalkit-hf", "vllm": "evalkit-vllm"}
"""A scorer's lm-eval model name, as a score records it."""


def benchmark_scorer(suite: SuiteConfig, run: RunResult, task: BenchmarkTask, on_workers: bool) -> Scorer:
    """Return who scores a benchmark in this run: the spec's ``scorer``, resolving ``auto``.

    ``auto`` is ``vllm`` for a benchmark that generates (ifeval) when every candidate it
    scores generated on vLLM (whose engine holds their weights already) and the run has no
    Ray workers to score on, else ``hf``: one scorer for the whole benchmark, so every
    pairing compares like with like. Log-likelihood benchmarks stay on ``hf``: evalkit's HF
    model computes the log-probabilities of the scored tokens only, where vLLM computes
    every prompt position's (measured on a 2-core CPU: ifeval 2-4x faster on vLLM,
    continuation 2x slower, general text and MMLU even; BENCHMARKS.md "Probe scorers").
    """
    if task.spec.scorer != "auto":
        return task.spec.scorer
    if not task.generates or on_workers:
        return "hf"
    sweep = suite.sweep.name if suite.sweep is not None else None
    backends = {suite.candidate(c.name).backend for c in run.candidates
                if c.status == "ok" and task.spec.scores(c.name, suite.baseline_name, sweep)
                and suite.candidate(c.name).backend != "openai_server"}
    return "vllm" if backends == {"vllm"} else "hf"


@register_stage("benchmarks")
def run_benchmarks(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Evaluate the suite's benchmarks on every candidate that ran (see the module docstring).

    Raises:
        BenchmarkError: MMLU's data is missing, a task is unknown, or lm-eval fails.
    """
    suite = inputs.suite
    if not suite.benchmarks:
        return
    metrics = [spec.metric for spec in suite.benchmarks]
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise BenchmarkError(
            f"{suite.source}: benchmarks: two entries store results as {', '.join(repeated)}; "
            "give one of them a distinct `name:`"
        )
    tasks = [prepare_benchmark(spec, suite.base_dir) for spec in suite.benchmarks]
    section: dict[str, dict[str, Any]] = {}  # its JSON form: the keys each entry set (entry_json)
    scored: dict[tuple[str, str | None, str, str], tuple[str, BenchmarkOutcome]] = {}
    executor = inputs.executor if inputs.executor is not None and inputs.executor.runs("hf", {}) else None
    notes_before = len(executor.notes()) if executor is not None else 0
    workers = WorkerScoring(executor) if executor is not None else None
    sweep = suite.sweep.name if suite.sweep is not None else None
    for task in tasks:
        if task.spec.candidates is not None:
            names = [c.name for c in run.candidates if task.spec.scores(c.name, suite.baseline_name, sweep)]
            progress.note(f"benchmarks: {task.spec.metric} scores {', '.join(names)} only (its candidates:)")
    scorers = {task.spec.metric: benchmark_scorer(suite, run, task, workers is not None) for task in tasks}
    for metric, scorer in scorers.items():
        if scorer == "vllm":
            progress.note(f"benchmarks: {metric} scored by evalkit-vllm on the run's vLLM engine")
    with benchmark_cache() as cache:
        for candidate in run.candidates:
            if candidate.status != "ok":
                continue
            config = suite.candidate(candidate.name)
            if config.backend == "openai_server":
                progress.note(
                    f"benchmarks: skipped {candidate.name}: it is served over HTTP, and lm-eval needs the "
                    "weights to score log-likelihoods; add a candidate with the same model as a directory"
                )
                continue
            for task in tasks:
                if not task.spec.scores(candidate.name, suite.baseline_name, sweep):
                    continue  # not in the benchmark's `candidates:` (noted above)
                _evaluate_candidate(suite, candidate, config, task, backends, progress, scored, section, cache,
                                    workers if scorers[task.spec.metric] == "hf" else None, scorers[task.spec.metric])
    # What each benchmark metric is and which way is better: the comparison reads it.
    for task in tasks:
        outcome = next((o for (*_, metric), (_, o) in scored.items() if metric == task.spec.metric), None)
        if outcome is not None:
            run.set_section_entry("metric_kinds", task.spec.metric, metric_declaration(task, outcome))
    if executor is not None and workers is not None:  # shard retries and counts join the executor section
        run.warnings += executor.notes()[notes_before:]
        run.set_section("executor", {**executor.summary(), "benchmark_shards": workers.shards})
    _add_drop_summaries(suite, run, tasks, section, progress)
    if section:
        run.set_section("benchmarks", section, only_set=True)


def _evaluate_candidate(
    suite: SuiteConfig,
    candidate: CandidateResult,
    config: CandidateConfig,
    task: BenchmarkTask,
    backends: dict[str, Backend],
    progress: Progress,
    scored: dict[tuple[str, str | None, str, str], tuple[str, BenchmarkOutcome]],
    section: dict[str, dict[str, Any]],
    cache: JsonCache[BenchmarkOutcome] | None = None,
    workers: WorkerScoring | None = None,
    scorer: Scorer = "hf",
) -> None:
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import EvalkitLM, EvalkitVLLM

    backend: Any = None
    if scorer == "vllm":
        backend = _local_backend(backends, "vllm")
        device = "cpu" if backend.on_cpu else "cuda"
        dtype = resolve_dtype(requested_dtype(config, task), device)
        # The engine generation started: the candidate's engine options and the dtype it
        # generated in (another set would restart the engine), never its output constraint.
        variant = replace(benchmark_variant(suite, config, candidate, task, None, dtype=dtype),
                          options=config.options, base_dir=suite.base_dir)
    elif workers is None:
        backend = _local_backend(backends, "hf")
        variant = benchmark_variant(suite, config, candidate, task, backend.device)
        device = str(backend.device.type)
    else:  # the workers' device decides the dtype, as the driver's does locally
        dtype, device = workers.dtype(requested_dtype(config, task))
        variant = benchmark_variant(suite, config, candidate, task, None, dtype=dtype)
    adapter_hash = adapter_fingerprint(variant.adapter) if variant.adapter else None
    key = (variant.model.fingerprint, adapter_hash, variant.dtype, task.spec.metric)
    cache_key = benchmark_key(task, variant.model.fingerprint, adapter_hash, variant.dtype, device, SCORERS[scorer])
    same_as = None
    cached = False
    if key in scored:
        same_as, outcome = scored[key]
    elif cache is not None and (hit := cache.get(cache_key)) is not None:
        outcome, cached = hit, True
        scored[key] = (candidate.name, outcome)
    else:
        if workers is not None:
            outcome = workers.score(task, variant, f"{candidate.name}: {task.spec.metric}", progress)
        else:
            progress.start(f"{candidate.name}: {task.spec.metric}", _expected_requests(task))
            model = EvalkitVLLM if scorer == "vllm" else EvalkitLM
            lm = model(backend, variant, batch_size=task.spec.batch_size, on_progress=progress.advance)
            outcome = evaluate_benchmark(task, lm)
            progress.finish()
        scored[key] = (candidate.name, outcome)
        if cache is not None:
            cache.put(cache_key, outcome)
    candidate.item_values[task.spec.metric] = dict(outcome.items)
    entry = outcome_entry(task, outcome, variant.dtype, SCORERS[scorer])
    if same_as is not None:
        entry.same_as = same_as
    if cached:
        entry.cached = True
    section.setdefault(candidate.name, {})[task.spec.metric] = entry_json(entry)


def _expected_requests(task: BenchmarkTask) -> int:
    # MMLU and continuation: four choices per item; general text: one rolling window per document
    # (each fits the context); other tasks' request counts are known only to lm-eval.
    if task.spec.is_general_text:
        from evalkit.benchmarks.probes import load_corpus, select_documents

        documents = len(select_documents(load_corpus(), task.spec.genres))
        return min(documents, task.spec.limit or documents)
    if task.spec.is_ifeval:  # one generation per prompt
        from evalkit.benchmarks.probes import load_prompts

        prompts = len(load_prompts())
        return min(prompts, task.spec.limit or prompts)
    if task.spec.is_continuation:  # one request per choice
        from evalkit.benchmarks.probes import CONTINUATION_CHOICES, load_items

        items = len(load_items())
        return CONTINUATION_CHOICES * min(items, task.spec.limit or items)
    if task.formulation is None:
        return 0
    from evalkit.benchmarks.mmlu_data import load_mmlu, select_items

    return 4 * len(select_items(load_mmlu(), task.spec.subjects, task.spec.per_subject_limit))


def _add_drop_summaries(
    suite: SuiteConfig, run: RunResult, tasks: list[BenchmarkTask], section: dict[str, dict[str, Any]],
    progress: Progress,
) -> None:
    baseline = run.baseline
    if baseline not in section:
        return
    warned: set[str] = set()
    for task in tasks:
        metric = task.spec.metric
        base_entry = section[baseline].get(metric)
        if base_entry is None:
            continue
        for name, entries in section.items():
            if name == baseline or metric not in entries:
                continue
            higher_is_better = base_entry.get("higher_is_better") is not False
            drop = drop_summary(baseline, base_entry, entries[metric], task.spec.max_drop or suite.max_drop,
                                higher_is_better=higher_is_better)
            threshold = task.spec.max_drop or suite.max_drop
            smallest, paired = _detectable(task, run, baseline, name, metric)
            if smallest is not None:
                drop.detectable_drop = smallest
            entries[metric]["vs_baseline"] = entry_json(drop)
            if (drop.delta < 0) == higher_is_better and drop.delta != 0:
                progress.note(f"benchmarks: {describe_drop(name, metric, drop)}")
            allowed = Threshold.parse(threshold).allowed_drop(drop.baseline_acc)
            # A pass/fail metric's detectable drop comes from the baseline alone (one note per
            # metric); a measurement's from each candidate's own paired differences, so the
            # note names the candidate (another candidate of the same metric may decide).
            per_candidate = task.kind == "continuous"
            key = f"{metric}/{name}" if per_candidate else metric
            if smallest is not None and smallest > allowed and key not in warned:
                warned.add(key)
                subject = f"{metric} for {name}" if per_candidate else metric
                progress.note(f"benchmarks: {subject} CANNOT DECIDE its {threshold} threshold at this size: "
                              f"{undecidable_sentence(task, paired, drop.baseline_acc, smallest, allowed, name)}")


def undecidable_sentence(task: BenchmarkTask, n: int, baseline_value: float, smallest: float, allowed: float,
                         candidate: str) -> str:
    """Return why a benchmark cannot decide its threshold: its n, the smallest detectable drop, alpha and power."""
    relative = f" ({smallest / abs(baseline_value):.1%} of the baseline's {baseline_value:.3f})" if baseline_value \
        else ""
    source = ("the baseline's per-item variance" if task.kind == "binary"
              else f"the spread of the paired differences with {candidate}")
    return (f"at {n} paired items the smallest drop it detects is {smallest:.4f}{relative} "
            f"against {allowed:.4f} allowed "
            f"(from {source}; alpha 0.05 two-sided, power 0.80), so its bar reads inconclusive unless "
            "the change is that large")


def _detectable(task: BenchmarkTask, run: RunResult, baseline: str, candidate: str,
                metric: str) -> tuple[float | None, int]:
    # The smallest drop the paired items detect (evalkit.comparison.paired.detectable_drop).
    import numpy as np

    from evalkit.comparison.paired import detectable_drop

    base = run.candidate(baseline).item_values.get(metric, {})
    other = run.candidate(candidate).item_values.get(metric, {})
    ids = [item for item in base if item in other]
    if len(ids) < 2:
        return None, len(ids)
    base_values = np.array([base[i] for i in ids])
    kind = task.kind or ("binary" if np.all((base_values == 0.0) | (base_values == 1.0)) else "continuous")
    differences = np.array([other[i] for i in ids]) - base_values
    return detectable_drop(kind, base_values, differences), len(ids)  # type: ignore[arg-type]
