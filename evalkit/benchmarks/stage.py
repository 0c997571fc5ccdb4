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
from evalkit.benchmarks.section import BENCHMARKS, BaselineDrop, BenchmarkScore, DataSource, SubjectResult
from evalkit.benchmarks.sharding import WorkerScoring
from evalkit.comparison.thresholds import Threshold
from evalkit.errors import BenchmarkError
from evalkit.models.backend import Backend, ModelVariant, create_backend
from evalkit.models.sources import adapter_fingerprint, resolve_model
from evalkit.progress import Progress
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.run_facts import METRIC_KINDS
from evalkit.stages import SuiteInputs, register_stage
from evalkit.suite.config import CandidateConfig, SuiteConfig


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


def _hf_backend(backends: dict[str, Backend]) -> Any:
    # The run's HF backend holds the models generation loaded; create it if generation
    # did not need one (another backend, or everything cached). The runner closes it.
    if "hf" not in backends:
        backends["hf"] = create_backend("hf")
    return backends["hf"]


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
    # What each benchmark metric is and which way is better: the comparison reads it.
    declared = run.sections.setdefault(METRIC_KINDS, {})
    for task in tasks:
        outcome = next((o for (*_, metric), (_, o) in scored.items() if metric == task.spec.metric), None)
        if outcome is not None:
            declared[task.spec.metric] = metric_declaration(task, outcome)
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
    # MMLU and continuation: four choices per item; general text: one rolling window per document
    # (each fits the context); other tasks' request counts are known only to lm-eval.
    if task.spec.is_general_text:
        from evalkit.benchmarks.general_text_task import load_corpus, select_documents

        documents = len(select_documents(load_corpus(), task.spec.genres))
        return min(documents, task.spec.limit or documents)
    if task.spec.is_ifeval:  # one generation per prompt
        from evalkit.benchmarks.ifeval_task import load_prompts

        prompts = len(load_prompts())
        return min(prompts, task.spec.limit or prompts)
    if task.spec.is_continuation:  # one request per choice
        from evalkit.benchmarks.continuation_task import CHOICES, load_items

        items = len(load_items())
        return CHOICES * min(items, task.spec.limit or items)
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


