"""What a suite run asks of training: make missing or stale candidates, check the rest.

:func:`prepare_candidate_models` runs before planning: a candidate with ``train:`` gets
its adapter trained when it is missing or its manifest no longer matches the train
config (base, data, config or prompt changed); a candidate with ``merged_from:`` gets
its merged model rebuilt when it is missing or was merged from another adapter version.
:func:`check_adapter_base` refuses an adapter trained on a different base. The
``training`` run stage records each candidate's manifest in ``sections["manifests"]`` and
warns when the suite's eval data overlaps the training data a manifest records, or when
a candidate is evaluated with another prompt than it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.data.items import load_items
from evalkit.data.leakage import DEFAULT_THRESHOLD, find_leaks
from evalkit.errors import ConfigError, ModelError
from evalkit.files.home import file_sha256
from evalkit.files.safe_write import check_replaceable
from evalkit.models.backend import Backend
from evalkit.models.sources import ResolvedModel, adapter_fingerprint
from evalkit.progress import Progress
from evalkit.record.results import RunResult
from evalkit.stages import SuiteInputs, register_stage
from evalkit.suite.config import CandidateConfig, SuiteConfig
from evalkit.train.config import TrainConfig, load_train_config
from evalkit.train.lora import ProgressReporter
from evalkit.train.manifests import Manifest, read_manifest


def candidate_train_config(suite: SuiteConfig, candidate: CandidateConfig) -> TrainConfig | None:
    """Return the candidate's ``train:`` config, loaded; None when it has none.

    Raises:
        ConfigError: the train config does not load.
    """
    return load_train_config(suite.resolve(candidate.train)) if candidate.train else None


def candidate_adapter(suite: SuiteConfig, candidate: CandidateConfig) -> Path | None:
    """Return a candidate's adapter directory: ``adapter:``, else its train config's output.

    Raises:
        ConfigError: ``adapter:`` and the train config's ``output_dir`` name different places.
    """
    config = candidate_train_config(suite, candidate)
    if candidate.adapter is None:
        return config.output_path if config is not None else None
    adapter = suite.resolve(candidate.adapter)
    if config is not None and config.output_path != adapter:
        raise ConfigError(
            f"{suite.source}: candidate '{candidate.name}': adapter {adapter} is not the output_dir "
            f"{config.output_path} of its train config {config.source}; make them the same"
        )
    return adapter


def adapter_staleness(config: TrainConfig) -> str | None:
    """Return why the config's adapter must be (re)trained, or None when it is current."""
    from evalkit.train.pipeline import training_identity

    output = config.output_path
    if not (output / "adapter_config.json").is_file():
        return "it does not exist yet"
    manifest = read_manifest(output)
    if manifest is None:
        return "it has no evalkit manifest"
    return manifest.mismatch(training_identity(config))


def merged_staleness(adapter: Path, merged: Path) -> str | None:
    """Return why the merged model must be (re)built from ``adapter``, or None when current."""
    if not (merged / "config.json").is_file():
        return "it does not exist yet"
    manifest = read_manifest(merged)
    if manifest is None or manifest.adapter_hash is None:
        return "it has no evalkit manifest"
    if manifest.adapter_hash != adapter_fingerprint(adapter):
        return "its adapter changed since the merge"
    return None


def refuse_foreign_outputs(
    suite: SuiteConfig, selected: Sequence[CandidateConfig], trainers: dict[Path, TrainConfig], needed: dict[Path, None]
) -> None:
    """Before any training starts, refuse to overwrite a directory evalkit did not make.

    Checks every adapter directory that would be trained and every ``merged_from``
    candidate's ``model:`` directory that would be merged into (see :mod:`evalkit.files.safe_write`).

    Raises:
        OutputExists: one of them holds files evalkit did not make; the message names it
            and the command that replaces it with ``--force``.
    """
    for adapter in needed:
        config = trainers.get(adapter)
        if config is not None:
            check_replaceable(config.output_path,
                              remedy=f"run `evalkit train {config.source} --force` to replace it")
    for candidate in selected:
        if not candidate.merged_from:
            continue
        adapter, merged = suite.resolve(candidate.merged_from), suite.resolve(candidate.model)
        if (adapter / "adapter_config.json").is_file() or adapter in trainers:
            check_replaceable(merged, remedy=f"run `evalkit merge {adapter} --out {merged} --force` to "
                                             f"replace it (candidate '{candidate.name}')")


def prepare_candidate_models(suite: SuiteConfig, only: Sequence[str] | None, progress: Progress) -> None:
    """Train stale adapters and rebuild stale merged models the selected candidates need.

    An adapter is trained by whichever candidate of the suite names a train config for
    it, so running only a merged candidate still trains the adapter it is merged from.

    Raises:
        EvalkitError: training or merging failed (config, data or model errors).
        OutputExists: an adapter or merged model directory holds files evalkit did not make.
    """
    from evalkit.train.lora import merge_adapter
    from evalkit.train.pipeline import train_adapter

    reporter = ProgressReporter(progress)
    trainers: dict[Path, TrainConfig] = {}
    for candidate in suite.candidates:
        config = candidate_train_config(suite, candidate)
        if config is not None:
            trainers[candidate_adapter(suite, candidate) or config.output_path] = config
    selected = [c for c in suite.candidates if not only or c.name in only]
    needed: dict[Path, None] = {}
    for candidate in selected:
        adapter = candidate_adapter(suite, candidate)
        if adapter is not None:
            needed[adapter] = None
        if candidate.merged_from:
            needed[suite.resolve(candidate.merged_from)] = None
    refuse_foreign_outputs(suite, selected, trainers, needed)
    for adapter in needed:
        config = trainers.get(adapter)
        if config is None:
            continue
        reason = adapter_staleness(config)
        if reason is not None:
            progress.note(f"training {adapter} from {config.source}: {reason}")
            train_adapter(config, reporter)
    for candidate in selected:
        if not candidate.merged_from:
            continue
        adapter, merged = suite.resolve(candidate.merged_from), suite.resolve(candidate.model)
        if not (adapter / "adapter_config.json").is_file():
            continue  # planning skips the candidate and says how to make the adapter
        reason = merged_staleness(adapter, merged)
        if reason is not None:
            progress.note(f"merging {adapter} into {merged}: {reason}")
            merge_adapter(adapter, merged, reporter=reporter)


def check_adapter_base(candidate: CandidateConfig, adapter: Path, model: ResolvedModel) -> None:
    """Refuse an adapter whose manifest records a different base than the candidate's model.

    Raises:
        ModelError: the fingerprints differ; the message names both and what to do.
    """
    manifest = read_manifest(adapter)
    if manifest is not None and manifest.base_fingerprint != model.fingerprint:
        raise ModelError(
            f"candidate '{candidate.name}': adapter {adapter} was trained on '{manifest.base_source}' "
            f"(fingerprint {manifest.base_fingerprint[:12]}), but the candidate's model '{model.source}' "
            f"has fingerprint {model.fingerprint[:12]}; point `model:` at the base it was trained on or retrain it"
        )


def candidate_manifest(suite: SuiteConfig, candidate: CandidateConfig) -> Manifest | None:
    """Return the manifest beside a candidate's weights (its adapter's, else its model directory's), or None.

    Raises:
        ModelError: a manifest exists but cannot be read.
    """
    adapter = candidate_adapter(suite, candidate)
    if adapter is not None:
        return read_manifest(adapter)
    model_dir = suite.resolve(candidate.model)
    return read_manifest(model_dir) if model_dir.is_dir() else None


def _leakage_warning(name: str, manifest: Manifest, inputs: SuiteInputs) -> str | None:
    data = Path(manifest.data_path)
    if not data.is_file() or file_sha256(data) != manifest.data_sha256:
        return f"candidate '{name}': its training data {data} is gone or changed; eval leakage not checked"
    checks: dict[str, Any] = manifest.config.get("data_checks", {})
    threshold = float(checks.get("leakage_threshold", DEFAULT_THRESHOLD))
    leaks = find_leaks(load_items(data), inputs.items, manifest.leakage_field, threshold)
    if not leaks:
        return None
    items = len({leak.eval_line for leak in leaks})
    shown = "; ".join(leak.describe() for leak in leaks[:5])
    more = f" and {len(leaks) - 5} more" if len(leaks) > 5 else ""
    return (
        f"candidate '{name}': {items} eval items overlap the training data in its manifest ({data}): "
        f"{shown}{more}; its scores on them measure memory, not skill"
    )


@register_stage("training")
def record_training(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Run stage: record each candidate's manifest and warn about leakage or prompt drift."""
    for result in run.candidates:
        if result.status != "ok":
            continue
        candidate = inputs.suite.candidate(result.name)
        manifest = candidate_manifest(inputs.suite, candidate)
        if manifest is None:
            continue
        run.set_section_entry("manifests", result.name, manifest)
        warning = _leakage_warning(result.name, manifest, inputs)
        if warning is not None:
            run.warnings.append(warning)
        if result.identity is not None and manifest.prompt_hash and manifest.prompt_hash != result.identity.prompt_hash:
            run.warnings.append(
                f"candidate '{result.name}' was evaluated with another prompt than it was trained on; "
                "train it with this suite's prompt (`suite:` in its train config)"
            )


