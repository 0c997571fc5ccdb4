"""Run a suite: prepare and plan the candidates, generate, score, and collect a :class:`RunResult`.

The flow is prepare -> plan -> generate -> score -> the stages (compare and bars last).
Preparing (training, merging) and planning are :mod:`evalkit.planning`'s; planning
resolves every candidate's model and adapter before any generation, so a bad source
fails in seconds, not after the first candidate's run. Generation and scoring of one
planned candidate is :func:`evaluate_candidate`; :func:`execute_suite` drives the run.
"""

from __future__ import annotations

import functools
import gc
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from evalkit.checks import Check, metric_declarations
from evalkit.checks.sampling import expand_samples, record_sampling, score_samples
from evalkit.executors import ChunkUsage, Executor, open_executor
from evalkit.files.home import file_sha256
from evalkit.models.backend import Backend, GenerationItem, create_backend, runtime_identity
from evalkit.models.fleet import fleet_key_options
from evalkit.planning import candidate_identity, plan_candidates, prepare_candidates
from evalkit.progress import Progress, SilentProgress
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.record.run_facts import evalkit_version, utc_now
from evalkit.stages import CandidatePlan, SuiteInputs, import_stage_modules, load_inputs
from evalkit.store import CachedGeneration, GenerationCache, generation_key, prompt_format_fingerprint
from evalkit.suite.check import check_suite_references
from evalkit.suite.config import GenerationConfig, SuiteConfig
from evalkit.usage.stage import UsageMeter, find_price

# Planning (evalkit.planning) and loading the inputs (evalkit.stages) are steps of a run
# too; they are handed on here for the callers that import them from the runner.
__all__ = ["candidate_identity", "evaluate_candidate", "execute_suite", "generation_cache_keys", "load_inputs",
           "new_run_id", "plan_candidates", "plan_suite", "prepare_candidates", "score_item"]


def score_item(checks: Sequence[Check], item: ItemResult) -> None:
    """Run every check on one item result and store the scores on it."""
    for check in checks:
        item.scores.update(check(item.prediction, item.expected))


def evaluate_candidate(
    inputs: SuiteInputs,
    plan: CandidatePlan,
    backend: Callable[[], Backend],
    progress: Progress,
    cache: GenerationCache | None = None,
    executor: Executor | None = None,
    run: RunResult | None = None,
) -> CandidateResult:
    """Generate and score every item for one planned candidate.

    With a ``cache``, items whose generation is cached are not generated again, and the
    rest are generated one chunk (``generation.batch_size`` items) at a time, each chunk
    stored before the next starts: a killed run loses at most one chunk, and its rerun
    resumes there. Chunks are fixed slices of the items in a deterministic order, so a
    resumed run batches exactly as an uninterrupted one.

    Args:
        inputs: the suite's items and checks.
        plan: the planned candidate.
        backend: returns the backend; called only when something must be generated, so
            a fully cached candidate never loads its model.
        progress: the progress reporter.
        cache: the generation cache, or None to generate everything.
        executor: generates the chunks elsewhere (a Ray cluster, :mod:`evalkit.executors`);
            the chunks and what is stored are the same, so results equal a local run's.
        run: the run whose sections receive the candidate's usage (tokens, latency and
            cost, :mod:`evalkit.usage.stage`; items generated here, not those from the cache)
            and, with ``generation.samples`` > 1, its rate metrics and flaky items
            (:func:`evalkit.checks.sampling.record_sampling`).
    """
    assert plan.variant is not None
    suite = inputs.suite
    dataset = suite.resolve(suite.dataset.path)
    conversations = [plan.template.messages(item.fields, f"{dataset}:{item.line}") for item in inputs.items]
    expected = [plan.template.expected_output(item.fields, f"{dataset}:{item.line}") for item in inputs.items]
    # One generation per (item, sample): `samples` outputs per item, each seeded (evalkit.checks.sampling).
    sampled = expand_samples(suite.generation, [item.id for item in inputs.items],
                             generation_cache_keys(plan, conversations, suite.generation), conversations)
    keys, conversations = sampled.keys, sampled.conversations
    done: dict[str, CachedGeneration] = cache.get_many(keys) if cache is not None else {}
    progress.start(f"{plan.config.name}: generating", len(keys))
    progress.advance(sum(1 for key in keys if key in done))
    started = time.perf_counter()
    # Longest first (as the backend batches), ties by position: the same order every run.
    order = sorted(range(len(keys)), key=lambda i: (-len(json.dumps(conversations[i])), i))
    chunk_size = suite.generation.batch_size
    chunks = [[i for i in order[start : start + chunk_size] if keys[i] not in done]
              for start in range(0, len(order), chunk_size)]
    chunks = [todo for todo in chunks if todo]
    meter = UsageMeter()

    def keep(todo: list[int], generations: Sequence[tuple[str, str]]) -> None:
        fresh = {keys[i]: CachedGeneration(prompt, completion)
                 for i, (prompt, completion) in zip(todo, generations, strict=True)}
        if cache is not None:
            cache.put_many(fresh)
        done.update(fresh)

    def on_chunk(index: int, generations: list[tuple[str, str]], usage: ChunkUsage) -> None:
        keep(chunks[index], generations)
        # What the worker's backend reported for the chunk, metered as a local chunk is.
        meter.record([inputs.items[sampled.item_index[i]].id for i in chunks[index]], usage, usage.seconds)
        progress.advance(len(generations))

    # Seeded sampling runs here: the executor's workers take no per-generation seeds.
    if executor is not None and sampled.seeds is None and executor.runs(plan.config.backend, plan.config.options):
        executor.generate(plan.config.backend, plan.variant, [[conversations[i] for i in todo] for todo in chunks],
                          suite.generation, on_chunk)
    else:
        for todo in chunks:
            generator = backend()
            chunk = [conversations[i] for i in todo]
            chunk_started = time.perf_counter()
            extra = sampled.generate_kwargs(todo)
            if getattr(generator, "takes_items", False):  # the mock answers by item id
                extra["items"] = [GenerationItem(inputs.items[sampled.item_index[i]].id,
                                               expected[sampled.item_index[i]]) for i in todo]
            completions = generator.generate(plan.variant, chunk, suite.generation, progress.advance, **extra)
            meter.record([inputs.items[sampled.item_index[i]].id for i in todo], generator,
                         time.perf_counter() - chunk_started)
            keep(todo, [(generator.render_prompt(plan.variant, c), text)
                        for c, text in zip(chunk, completions, strict=True)])
    seconds = time.perf_counter() - started
    progress.finish()
    result = CandidateResult(name=plan.config.name, identity=candidate_identity(plan), seconds=seconds)
    outputs: list[list[str]] = []
    for index, (item, reference) in enumerate(zip(inputs.items, expected, strict=True)):
        generations = [done[keys[i]] for i in sampled.of_item(index)]
        item_result = ItemResult(
            item_id=item.id, fields=item.fields, prompt=generations[0].prompt, expected=reference,
            prediction=generations[0].completion,
        )
        outputs.append([g.completion for g in generations])
        if suite.generation.samples == 1:
            score_item(inputs.checks, item_result)
        result.items.append(item_result)
    if suite.generation.samples > 1:
        scored = score_samples(inputs.checks, result.items, outputs, suite.generation)
        if run is not None:
            record_sampling(run, plan.config.name, suite.generation, scored)
    if run is not None:
        prices = getattr(suite, "prices", None)
        run.set_section_entry("usage", plan.config.name, meter.summary(
            len(inputs.items), find_price(plan.config.name, plan.config.model, prices)))
    return result


def generation_cache_keys(
    plan: CandidatePlan, conversations: Sequence[list[dict[str, str]]], settings: GenerationConfig
) -> list[str]:
    """Return the generation-cache key of each conversation for a planned candidate."""
    assert plan.variant is not None
    identity = candidate_identity(plan)
    prompt_format = prompt_format_fingerprint(plan.variant.model.path)
    runtime = runtime_identity(plan.config.backend, plan.variant)
    # Behind an external endpoint the server decides what runs, not the local files.
    served = "served" in runtime
    return [
        generation_key(
            model_fingerprint="served" if served else plan.variant.model.fingerprint,
            prompt_format=prompt_format,
            adapter_hash=None if served or identity is None else identity.adapter_hash,
            backend=plan.config.backend,
            runtime=runtime,
            # A constrained candidate's outputs differ from the same model's free ones.
            options={**fleet_key_options(plan.config.options), **({"constraint": plan.variant.constraint}
                                               if plan.variant.constraint else {})},
            messages=conversation,
            settings=settings,
        )
        for conversation in conversations
    ]


def _backend(backends: dict[str, Backend], name: str) -> Backend:
    # Created on first use, so a run served wholly from the cache loads no model.
    if name not in backends:
        backends[name] = create_backend(name)
    return backends[name]


def new_run_id() -> str:
    """Return a run id from the current UTC time (sortable, unique per second).

    Deliberately not :func:`evalkit.record.run_facts.utc_now`'s ISO form: a run id names a directory.
    """
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def plan_suite(
    suite: SuiteConfig,
    *,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    allow_missing: Sequence[str] = (),
) -> SuiteInputs:
    """Check, load, prepare and plan a suite: the inputs every later step is handed.

    Its steps in order: what the suite names is checked (rubrics, labels, benchmark
    tasks), its data and checks loaded, stale adapters trained and merged models merged
    (:func:`prepare_candidates`, with progress), then each selected candidate planned
    once (:func:`plan_candidates`); ``inputs.plans`` holds the plans by name.

    Args:
        suite: the suite.
        progress: where progress goes; default silent.
        only: plan only these candidates.
        allow_missing: candidates that may be missing besides the suite's ``optional: true`` ones.

    Raises:
        EvalkitError: the suite names something that does not load, or a candidate that
            may not be missing cannot be evaluated.
    """
    check_suite_references(suite)  # rubrics, labels, judge bars, benchmark tasks: before anything loads
    import_stage_modules()
    inputs = load_inputs(suite)
    prepare_candidates(inputs, only, progress, allow_missing)
    inputs.plans = {plan.config.name: plan for plan in plan_candidates(inputs, only, allow_missing)}
    return inputs


def execute_suite(
    suite: SuiteConfig,
    *,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    command: str = "",
    cache: GenerationCache | None = None,
    allow_missing: Sequence[str] = (),
    planned: SuiteInputs | None = None,
) -> RunResult:
    """Run a validated suite end to end and return its result (nothing written).

    Args:
        suite: the suite.
        progress: where progress goes; default silent.
        only: run only these candidates.
        allow_missing: candidates that may be missing besides the suite's ``optional: true`` ones.
        command: the command line, recorded in the run.
        cache: the generation cache (see :func:`evaluate_candidate`); None generates all.
        planned: the suite's :func:`plan_suite`, when the caller planned it already (the
            pytest plugin keys its reuse on the plans); ``only`` and ``allow_missing``
            were applied then. Default: planned here.
    """
    progress = progress or SilentProgress()
    executor = open_executor(suite.executor)  # before planning: a missing Ray fails in a second
    try:
        inputs = planned if planned is not None else plan_suite(suite, progress=progress, only=only,
                                                                allow_missing=allow_missing)
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    plans = list(inputs.plans.values())
    inputs.executor = executor  # the benchmarks stage sends its shards to the same workers
    run = RunResult(
        run_id=new_run_id(),
        suite_name=suite.name,
        suite_path=str(suite.source),
        baseline=suite.baseline_name,
        candidates=[],
        started_at=utc_now(),
        dataset_hash=file_sha256(suite.resolve(suite.dataset.path)),
        evalkit_version=evalkit_version(),
        command=command,
    )
    backends: dict[str, Backend] = {}
    # What is loaded, and each evaluated candidate's items, live to the end of the run: moved
    # out of the collector's sight, so that its full passes do not rescan millions of them
    # again and again (seconds each on a large run, and a stall inside any timed step).
    gc.freeze()
    try:
        for plan in plans:
            if plan.variant is None:
                progress.note(f"not evaluated {plan.config.name} (it may be missing): {plan.skip_reason}")
                run.candidates.append(CandidateResult(name=plan.config.name, status="skipped",
                                                      message=plan.skip_reason))
                continue
            get_backend = functools.partial(_backend, backends, plan.config.backend)
            if plan.config.constrain:
                # The report places a constrained control beside the fine-tunes (evalkit.report.failures).
                run.set_section_entry("controls", plan.config.name, {"constrain": plan.config.constrain})
            run.candidates.append(evaluate_candidate(inputs, plan, get_backend, progress, cache, executor, run))
            gc.freeze()
        # What each check declared its metrics to be: the comparison picks its test from it.
        run.set_section("metric_kinds", metric_declarations(inputs.checks))
        if executor is not None:
            run.warnings += executor.notes()
            run.set_section("executor", executor.summary())
        for _, stage in import_stage_modules():
            stage(inputs, run, backends, progress)
    finally:
        gc.unfreeze()  # collectable again once the run is over (a library caller runs many)
        if executor is not None:
            executor.close()
        for backend in backends.values():
            backend.close()
    run.finished_at = utc_now()
    return run
