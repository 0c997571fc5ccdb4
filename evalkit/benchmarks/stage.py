"""The run stage that evaluates a suite's ``benchmarks:`` on every candidate.

It is the lazy ``benchmarks`` entry of :data:`evalkit.stages.STAGES`, imported when a
suite runs (so ``evalkit --help`` never imports lm-eval). For every candidate that
ran, and every benchmark entry, it:

1. scores the candidate through lm-eval's ``simple_evaluate`` with
   :class:`~evalkit.benchmarks.lm.EvalkitLM` on the run's HF backend, so a base
   model's weights are loaded once for generation and benchmarks alike, and an adapter
   is switched on those weights, not loaded as a second model;
2. stores per-item correctness in ``CandidateResult.item_values[<metric>]`` (item id
   ``<subject>/<index>`` -> 0.0/1.0), where the comparison finds it for its paired
   statistics and the ``max_drop`` verdict;
3. writes ``run.sections["benchmarks"][candidate][metric]``: lm-eval's overall score
   and its stderr, the formulation and few-shot setting, per-subject accuracy, and,
   for candidates other than the baseline, the drop and the subjects that dropped most.

Candidates that are the same weights (a prompt variant of the base, say) are scored
once: benchmarks ignore the suite's task prompt, so their results are equal by
construction, and the entry says ``same_as``. Outcomes are cached across runs
(:mod:`evalkit.benchmarks.cache`): a candidate whose weights, dtype and task are unchanged
is not scored again, its model is not even loaded, and the entry says ``cached``.

When the run has a Ray executor, each benchmark is scored on its workers instead
(:mod:`evalkit.benchmarks.sharding`: MMLU in question-range shards, another task whole),
by the HF backend each worker already holds, and merged on the driver into the same
entry a local run writes; only the driver writes the results cache and the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.benchmarks.cache import BenchmarkCache, benchmark_key
from evalkit.benchmarks.evaluate import BenchmarkOutcome, BenchmarkTask, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.gate import describe_drop, drop_summary
from evalkit.benchmarks.sharding import WorkerScoring
from evalkit.config import CandidateConfig, SuiteConfig
from evalkit.errors import BenchmarkError
from evalkit.models.backend import Backend, ModelVariant, create_backend
from evalkit.models.sources import adapter_fingerprint, resolve_model
from evalkit.progress import Progress
from evalkit.results import CandidateResult, RunResult
from evalkit.sections.benchmarks import BENCHMARKS, BaselineDrop, BenchmarkScore, DataSource, SubjectResult
from evalkit.stages import SuiteInputs


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


def outcome_entry(task: BenchmarkTask, outcome: BenchmarkOutcome, dtype: str) -> BenchmarkScore:
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
        dtype=dtype,
        seconds=round(outcome.seconds, 2),
        subjects={
            subject: SubjectResult(acc=score.acc, stderr=score.stderr, n=score.n)
            for subject, score in outcome.subjects.items()
        },
    )
    if task.formulation is not None:
        entry.data_source = DataSource(**mmlu_data_source())
    return entry


def entry_json(entry: BenchmarkScore | BaselineDrop) -> dict[str, Any]:
    """Return an entry's JSON form as the section stores it: only the keys that were set."""
    return entry.model_dump(mode="json", exclude_unset=True)


def _hf_backend(backends: dict[str, Backend]) -> Any:
    # The run's HF backend holds the models generation loaded; create it if generation
    # did not need one (another backend, or everything cached). The runner closes it.
    if "hf" not in backends:
        backends["hf"] = create_backend("hf")
    return backends["hf"]


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
    section: dict[str, dict[str, Any]] = run.sections.setdefault(BENCHMARKS, {})
    scored: dict[tuple[str, str | None, str, str], tuple[str, BenchmarkOutcome]] = {}
    executor = inputs.executor if inputs.executor is not None and inputs.executor.runs("hf", {}) else None
    notes_before = len(executor.notes()) if executor is not None else 0
    workers = WorkerScoring(executor) if executor is not None else None
    with BenchmarkCache() as cache:
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
                _evaluate_candidate(suite, candidate, config, task, backends, progress, scored, section, cache,
                                    workers)
    if executor is not None and workers is not None:  # shard retries and counts join the executor section
        run.warnings += executor.notes()[notes_before:]
        run.sections["executor"] = {**executor.summary(), "benchmark_shards": workers.shards}
    _add_drop_summaries(suite, run, tasks, section, progress)


def _evaluate_candidate(
    suite: SuiteConfig,
    candidate: CandidateResult,
    config: CandidateConfig,
    task: BenchmarkTask,
    backends: dict[str, Backend],
    progress: Progress,
    scored: dict[tuple[str, str | None, str, str], tuple[str, BenchmarkOutcome]],
    section: dict[str, dict[str, Any]],
    cache: BenchmarkCache | None = None,
    workers: WorkerScoring | None = None,
) -> None:
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import EvalkitLM

    if workers is None:
        backend = _hf_backend(backends)
        variant = benchmark_variant(suite, config, candidate, task, backend.device)
        device = str(backend.device.type)
    else:  # the workers' device decides the dtype, as the driver's does locally
        dtype, device = workers.dtype(requested_dtype(config, task))
        variant = benchmark_variant(suite, config, candidate, task, None, dtype=dtype)
    adapter_hash = adapter_fingerprint(variant.adapter) if variant.adapter else None
    key = (variant.model.fingerprint, adapter_hash, variant.dtype, task.spec.metric)
    cache_key = benchmark_key(task, variant.model.fingerprint, adapter_hash, variant.dtype, device)
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
            lm = EvalkitLM(backend, variant, batch_size=task.spec.batch_size, on_progress=progress.advance)
            outcome = evaluate_benchmark(task, lm)
            progress.finish()
        scored[key] = (candidate.name, outcome)
        if cache is not None:
            cache.put(cache_key, outcome)
    candidate.item_values[task.spec.metric] = dict(outcome.items)
    entry = outcome_entry(task, outcome, variant.dtype)
    if same_as is not None:
        entry.same_as = same_as
    if cached:
        entry.cached = True
    section.setdefault(candidate.name, {})[task.spec.metric] = entry_json(entry)


def _expected_requests(task: BenchmarkTask) -> int:
    # MMLU: four choices per question; other tasks' request counts are known only to lm-eval.
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
    for task in tasks:
        metric = task.spec.metric
        base_entry = section[baseline].get(metric)
        if base_entry is None:
            continue
        for name, entries in section.items():
            if name == baseline or metric not in entries:
                continue
            drop = drop_summary(baseline, base_entry, entries[metric], task.spec.max_drop or suite.max_drop)
            entries[metric]["vs_baseline"] = entry_json(drop)
            if drop.delta < 0:
                progress.note(f"benchmarks: {describe_drop(name, metric, drop)}")


