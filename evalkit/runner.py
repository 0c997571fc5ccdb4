"""Run a suite: resolve candidates, generate, score, and collect a :class:`RunResult`.

The flow is plan -> generate -> score -> further stages -> write. Planning resolves
every candidate's model and adapter before any generation, so a bad source fails in
seconds, not after the first candidate's run.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalkit.checks import Check, metric_declarations
from evalkit.config import CandidateConfig, GenerationConfig, SuiteConfig
from evalkit.data.items import file_sha256
from evalkit.executors import Executor, open_executor
from evalkit.models.backend import Backend, GenerationItem, ModelVariant, create_backend
from evalkit.models.engine_options import engine_identity
from evalkit.models.fleet import fleet_key_options, fleet_urls
from evalkit.models.sources import (
    ResolvedModel,
    adapter_fingerprint,
    hosted_model,
    is_local_source,
    resolve_model,
)
from evalkit.progress import Progress, SilentProgress
from evalkit.prompting import prompt_for_candidate, template_hash
from evalkit.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.sampling import expand_samples, record_sampling, score_samples
from evalkit.stages import (
    STAGES,
    CandidatePlan,
    SuiteInputs,
    import_stage_modules,
    load_inputs,
)
from evalkit.store import CachedGeneration, GenerationCache, generation_key, prompt_format_fingerprint
from evalkit.usage import UsageMeter, find_price
from evalkit.version import evalkit_version


def missing_candidates(suite: SuiteConfig, selected: Sequence[CandidateConfig]) -> dict[str, str]:
    """Return, for each selected candidate that cannot be evaluated, why and how to make it.

    Looked at before anything is trained or loaded: an adapter that is missing counts
    only when no candidate's ``train:`` config makes it, a merged model only when its
    adapter neither exists nor is trained by the suite.
    """
    from evalkit.errors import ModelError
    from evalkit.train.candidates import candidate_adapter

    trained = {candidate_adapter(suite, c) for c in suite.candidates if c.train}
    missing: dict[str, str] = {}
    for config in selected:
        if config.merged_from:
            merged, source = suite.resolve(config.model), suite.resolve(config.merged_from)
            if not merged.exists() and not (source / "adapter_config.json").is_file() and source not in trained:
                missing[config.name] = (
                    f"merged model {merged} not found, nor its adapter {source}; make the adapter with "
                    f"`evalkit train TRAIN_CONFIG.yaml`, then `evalkit merge {source} --out {merged}`"
                )
            continue
        try:
            candidate_model(config, suite.base_dir)
        except ModelError as exc:
            missing[config.name] = str(exc)
            continue
        adapter = candidate_adapter(suite, config)
        if adapter is not None and not (adapter / "adapter_config.json").is_file() and adapter not in trained:
            missing[config.name] = (
                f"adapter {adapter} not found; make it with `evalkit train TRAIN_CONFIG.yaml` "
                "(see the README), or give the candidate a `train:` config that makes it"
            )
    return missing


def refuse_missing(suite: SuiteConfig, missing: dict[str, str], allow_missing: Sequence[str] = ()) -> None:
    """Stop the run when a candidate that may not be missing is (before anything is generated).

    A candidate may be missing when the suite marks it ``optional: true`` or the
    command names it with ``--allow-missing``.

    Raises:
        ConfigError: (exit 2) naming the first such candidate, why, and how to make it.
    """
    from evalkit.errors import ConfigError

    optional = {c.name for c in suite.candidates if c.optional} | set(allow_missing)
    refused = [name for name in missing if name not in optional]
    if not refused:
        return
    first = refused[0]
    more = f" (also missing: {', '.join(refused[1:])})" if len(refused) > 1 else ""
    raise ConfigError(
        f"{suite.source}: candidate '{first}' cannot be evaluated: {missing[first]}; to run without it, "
        f"mark it `optional: true` or pass --allow-missing {first}{more}"
    )


def prepare_candidates(
    inputs: SuiteInputs, only: Sequence[str] | None = None, progress: Progress | None = None,
    allow_missing: Sequence[str] = (),
) -> None:
    """Make what the selected candidates need, before they are planned: the run's own visible step.

    A candidate that cannot be evaluated stops the run here, before anything is trained
    or generated, unless it may be missing (``optional: true``, ``allow_missing``).
    Candidates with a ``train:`` config whose adapter is missing or stale are trained, and
    stale ``merged_from`` models merged (see :mod:`evalkit.train.candidates`), with progress.

    Raises:
        ConfigError: a candidate that may not be missing cannot be evaluated.
    """
    from evalkit.train.candidates import prepare_candidate_models

    suite = inputs.suite
    selected = [c for c in suite.candidates if not only or c.name in only]
    missing = missing_candidates(suite, selected)
    refuse_missing(suite, missing, allow_missing)
    available = [c.name for c in selected if c.name not in missing]
    if available:
        prepare_candidate_models(suite, available, progress or SilentProgress())


def plan_candidates(
    inputs: SuiteInputs, only: Sequence[str] | None = None, allow_missing: Sequence[str] = (),
) -> list[CandidatePlan]:
    """Resolve every candidate's model, adapter and prompt; never trains or merges.

    Planning only reads: what :func:`prepare_candidates` makes must exist already, so
    that anything that plans (parity, the pytest plugin's cache key) cannot train by
    surprise. A candidate that may be missing (``optional: true``, ``allow_missing``) and
    is, is planned as not evaluated.

    Raises:
        ConfigError: a candidate that may not be missing cannot be evaluated.
        ModelError: a model source does not resolve, an adapter or merged model was not
            made (the message says how), or an adapter was trained on another base.
    """
    from evalkit.errors import ModelError
    from evalkit.train.candidates import candidate_adapter, check_adapter_base

    suite = inputs.suite
    selected = [c for c in suite.candidates if not only or c.name in only]
    missing = missing_candidates(suite, selected)
    refuse_missing(suite, missing, allow_missing)
    plans: list[CandidatePlan] = []
    for config in selected:
        template = prompt_for_candidate(suite, config, inputs.train_items, inputs.items)
        if config.name in missing:
            plans.append(CandidatePlan(config, None, template, skip_reason=missing[config.name]))
            continue
        if config.merged_from and not suite.resolve(config.model).exists():
            raise ModelError(f"candidate '{config.name}': merged model {suite.resolve(config.model)} was not "
                             f"made; make it with `evalkit merge {suite.resolve(config.merged_from)} "
                             f"--out {suite.resolve(config.model)}`")
        model = candidate_model(config, suite.base_dir)
        adapter = candidate_adapter(suite, config)
        if adapter is not None and not (adapter / "adapter_config.json").is_file():
            raise ModelError(f"candidate '{config.name}': adapter {adapter} was not made; make it with "
                             f"`evalkit train {suite.resolve(config.train) if config.train else 'TRAIN_CONFIG.yaml'}`")
        if adapter is not None and not model.hosted:
            check_adapter_base(config, adapter, model)
        from evalkit.models.constrained import candidate_constraint

        variant = ModelVariant(model=model, adapter=adapter, adapter_name=config.name if adapter else None,
                               dtype=config.dtype, options=config.options,
                               constraint=candidate_constraint(suite, config), base_dir=suite.base_dir)
        plans.append(CandidatePlan(config, variant, template))
    return plans


def candidate_model(config: CandidateConfig, base_dir: Path) -> ResolvedModel:
    """Resolve a candidate's ``model:``; behind an ``openai_server`` endpoint it may be hosted.

    A candidate served from an endpoint (``base_url``) whose model is not on this machine
    is a hosted model, known by its endpoint and name; every other model must resolve
    locally (``serve: true`` starts a server for a local model).

    Raises:
        ModelError: a local model source does not resolve.
    """
    options = dict(config.options)
    if config.backend == "mock":
        # The mock never loads its model: `model:` is only the candidate's identity.
        return hosted_model(config.model, "mock")
    if config.backend == "openai_server" and not options.get("serve") and not is_local_source(config.model, base_dir):
        # A fleet's endpoints are checked to serve one model (evalkit.models.fleet): the first stands for all.
        return hosted_model(config.model, fleet_urls(options["base_url"])[0] if options.get("base_url") else "")
    return resolve_model(config.model, base_dir)


def candidate_identity(plan: CandidatePlan) -> CandidateIdentity | None:
    """Return what exactly a planned candidate is (None when it is skipped)."""
    if plan.variant is None:
        return None
    adapter = plan.variant.adapter
    return CandidateIdentity(
        model_source=plan.config.model,
        model_fingerprint=plan.variant.model.fingerprint,
        adapter=str(adapter) if adapter else None,
        adapter_hash=adapter_fingerprint(adapter) if adapter else None,
        backend=plan.config.backend,
        prompt_hash=template_hash(plan.template),
        engine=engine_identity(plan.config.backend, plan.config.options),
    )


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
    usage: dict[str, Any] | None = None,
    sampling: dict[str, Any] | None = None,
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
        usage: receives the candidate's tokens, latency and cost under its name
            (:mod:`evalkit.usage`; items generated here, not those from the cache).
        sampling: with ``generation.samples`` > 1, receives the rate metrics and flaky
            items (:func:`evalkit.sampling.record_sampling`).
    """
    assert plan.variant is not None
    suite = inputs.suite
    dataset = suite.resolve(suite.dataset.path)
    conversations = [plan.template.messages(item.fields, f"{dataset}:{item.line}") for item in inputs.items]
    expected = [plan.template.expected_output(item.fields, f"{dataset}:{item.line}") for item in inputs.items]
    # One generation per (item, sample): `samples` outputs per item, each seeded (evalkit.sampling).
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

    def on_chunk(index: int, generations: list[tuple[str, str]]) -> None:
        keep(chunks[index], generations)
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
        if sampling is not None:
            record_sampling(sampling, plan.config.name, suite.generation, scored)
    if usage is not None:
        prices = getattr(suite, "prices", None)
        usage[plan.config.name] = meter.summary(len(inputs.items),
                                                find_price(plan.config.name, plan.config.model, prices))
    return result


def generation_cache_keys(
    plan: CandidatePlan, conversations: Sequence[list[dict[str, str]]], settings: GenerationConfig
) -> list[str]:
    """Return the generation-cache key of each conversation for a planned candidate."""
    from evalkit.models.runtime import runtime_identity

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
    """Return a run id from the current UTC time (sortable, unique per second)."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def execute_suite(
    suite: SuiteConfig,
    *,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    command: str = "",
    cache: GenerationCache | None = None,
    allow_missing: Sequence[str] = (),
) -> RunResult:
    """Run a validated suite end to end and return its result (nothing written).

    Args:
        suite: the suite.
        progress: where progress goes; default silent.
        only: run only these candidates.
        allow_missing: candidates that may be missing besides the suite's ``optional: true`` ones.
        command: the command line, recorded in the run.
        cache: the generation cache (see :func:`evaluate_candidate`); None generates all.
    """
    from evalkit.suite_check import check_suite_references

    progress = progress or SilentProgress()
    check_suite_references(suite)  # rubrics, labels, judge bars, benchmark tasks: before anything loads
    import_stage_modules()
    executor = open_executor(suite.executor)  # before planning: a missing Ray fails in a second
    inputs = load_inputs(suite)
    prepare_candidates(inputs, only, progress, allow_missing)
    plans = plan_candidates(inputs, only, allow_missing)
    inputs.plans = {plan.config.name: plan for plan in plans}
    run = RunResult(
        run_id=new_run_id(),
        suite_name=suite.name,
        suite_path=str(suite.source),
        baseline=suite.baseline_name,
        candidates=[],
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dataset_hash=file_sha256(suite.resolve(suite.dataset.path)),
        evalkit_version=evalkit_version(),
        command=command,
    )
    backends: dict[str, Backend] = {}
    try:
        for plan in plans:
            if plan.variant is None:
                progress.note(f"not evaluated {plan.config.name} (it may be missing): {plan.skip_reason}")
                run.candidates.append(CandidateResult(name=plan.config.name, status="skipped",
                                                      message=plan.skip_reason))
                continue
            get_backend = functools.partial(_backend, backends, plan.config.backend)
            if plan.config.constrain:
                # The report places a constrained control beside the fine-tunes (evalkit.report.controls).
                run.sections.setdefault("controls", {})[plan.config.name] = {"constrain": plan.config.constrain}
            run.candidates.append(evaluate_candidate(inputs, plan, get_backend, progress, cache, executor,
                                                      usage=run.sections.setdefault("usage", {}),
                                                      sampling=run.sections.setdefault("sampling", {})
                                                      if suite.generation.samples > 1 else None))
        # What each check declared its metrics to be: the comparison picks its test from it.
        run.sections["metric_kinds"] = metric_declarations(inputs.checks)
        if executor is not None:
            run.warnings += executor.notes()
            run.sections["executor"] = executor.summary()
        for _, stage in STAGES.items():
            stage(inputs, run, backends, progress)
    finally:
        if executor is not None:
            executor.close()
        for backend in backends.values():
            backend.close()
    from evalkit.compare import compare_candidates

    run.sections["comparison"] = compare_candidates(run, suite).to_dict()
    run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return run
