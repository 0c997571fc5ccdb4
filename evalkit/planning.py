"""Before anything is generated: make what the candidates need, then plan each one.

Two steps of a run, in this order (:func:`evalkit.runner.execute_suite`):

* :func:`prepare_candidates` trains the adapters and merges the models the selected
  candidates need (:mod:`evalkit.train.candidates`), with progress: the run's own
  visible step;
* :func:`plan_candidates` resolves every candidate's model, adapter and prompt into a
  :class:`~evalkit.stages.CandidatePlan`, reading only, so that anything that plans
  (parity, the pytest plugin's cache key) cannot train by surprise.

Both first look for candidates that cannot be evaluated (:func:`missing_candidates`),
and stop the run, before anything is trained or generated, on one that may not be
missing (:func:`refuse_missing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import ConfigError, ModelError
from evalkit.models.backend import ModelVariant
from evalkit.models.fleet import fleet_urls
from evalkit.models.hf import candidate_constraint
from evalkit.models.options import engine_identity
from evalkit.models.sources import (
    ResolvedModel,
    adapter_fingerprint,
    hosted_model,
    is_local_source,
    resolve_model,
)
from evalkit.progress import Progress, SilentProgress
from evalkit.prompting import prompt_for_candidate, template_hash
from evalkit.record.results import CandidateIdentity
from evalkit.stages import CandidatePlan, SuiteInputs
from evalkit.suite.config import CandidateConfig, SuiteConfig
from evalkit.train.candidates import candidate_adapter, check_adapter_base, prepare_candidate_models

__all__ = ["candidate_identity", "candidate_model", "missing_candidates", "plan_candidates",
           "prepare_candidates", "refuse_missing"]


def missing_candidates(suite: SuiteConfig, selected: Sequence[CandidateConfig]) -> dict[str, str]:
    """Return, for each selected candidate that cannot be evaluated, why and how to make it.

    Looked at before anything is trained or loaded: an adapter that is missing counts
    only when no candidate's ``train:`` config makes it, a merged model only when its
    adapter neither exists nor is trained by the suite.
    """
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


def _evaluable(
    suite: SuiteConfig, only: Sequence[str] | None, allow_missing: Sequence[str]
) -> tuple[list[CandidateConfig], dict[str, str]]:
    """Return the selected candidates and why each missing one is, having refused those that may not be."""
    selected = [c for c in suite.candidates if not only or c.name in only]
    missing = missing_candidates(suite, selected)
    refuse_missing(suite, missing, allow_missing)
    return selected, missing


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
    suite = inputs.suite
    selected, missing = _evaluable(suite, only, allow_missing)
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
    suite = inputs.suite
    selected, missing = _evaluable(suite, only, allow_missing)
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
