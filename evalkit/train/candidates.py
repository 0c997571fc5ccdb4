"""What a suite run asks of training (make missing or stale candidates, check the rest), and a training run.

:func:`prepare_candidate_models` runs before planning: a candidate with ``train:`` gets
its adapter trained when it is missing or its manifest no longer matches the train
config (base, data, config or prompt changed); a candidate with ``merged_from:`` gets
its merged model rebuilt when it is missing or was merged from another adapter version.
:func:`check_adapter_base` refuses an adapter trained on a different base. The
``training`` run stage records each candidate's manifest in ``sections["manifests"]`` and
warns when the suite's eval data overlaps the training data a manifest records, or when
a candidate is evaluated with another prompt than it was trained on.

Also here:

* The whole of one training run, shared by ``evalkit train`` and ``evalkit run`` (:func:`train_adapter`,
  :func:`check_training_data`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalkit.data.items import DEFAULT_THRESHOLD, Item, find_leaks, leakage_error, load_items
from evalkit.data.lint import lint_items
from evalkit.errors import ConfigError, DataError, ModelError
from evalkit.files.home import check_replaceable, file_sha256, staged_directory
from evalkit.files.yaml_source import refuse_non_regular_file
from evalkit.models.backend import Backend
from evalkit.models.sources import ResolvedModel, adapter_fingerprint, resolve_model
from evalkit.progress import Progress
from evalkit.prompting import PromptTemplate, template_hash
from evalkit.record.results import RunResult
from evalkit.record.run_facts import evalkit_version
from evalkit.stages import SuiteInputs, register_stage
from evalkit.suite.config import CandidateConfig, SuiteConfig
from evalkit.train.config import (
    Manifest,
    TrainConfig,
    TrainingIdentity,
    command_line,
    describe_machine,
    load_train_config,
    portable_path,
    read_manifest,
    write_manifest,
)
from evalkit.train.lora import (
    CHECKPOINTS_DIR,
    ProgressReporter,
    SilentReporter,
    TrainingReporter,
    load_training_model,
    require_qlora_support,
)


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
    candidate's ``model:`` directory that would be merged into (see :mod:`evalkit.files.home`).

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


# ``train_adapter``: the whole of one training run, shared by ``evalkit train`` and ``evalkit run``.
#
# Order, cheapest refusal first: the QLoRA hardware check, the config's prompt, data lint,
# the train/eval leakage check, then the model load and the chosen trainer (SFT or DPO).
# The adapter is written to a staging directory that replaces ``output_dir`` only when
# training and the manifest are complete, so a failed run leaves the old adapter intact;
# an ``output_dir`` holding files evalkit did not make is refused before anything runs
# (see :mod:`evalkit.files.home`).

def base_model(config: TrainConfig) -> ResolvedModel:
    """Resolve the config's base model (relative paths against the config file).

    Raises:
        ModelError: the source does not resolve.
    """
    return resolve_model(config.model, config.source.parent)


def record_base_name(adapter_dir: Path, source: str) -> None:
    """Write the base's source name (not this machine's cache path) into peft's adapter config.

    peft's model card (``README.md``, written by ``save_pretrained``) names the same cache
    path in its ``base_model:`` header; it says nothing evalkit's manifest does not, so it
    is removed rather than shipped with a machine path in it.
    """
    path = adapter_dir / "adapter_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = source
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (adapter_dir / "README.md").unlink(missing_ok=True)


def training_identity(config: TrainConfig, suite: SuiteConfig | None = None) -> TrainingIdentity:
    """Return the identity an adapter trained from ``config`` now would record.

    Raises:
        ConfigError: the config's suite does not load.
        DataError: the training data file is missing.
        ModelError: the base model does not resolve.
    """
    template = config.prompt_template(suite if suite is not None else config.load_suite())
    data = config.training_data_path
    refuse_non_regular_file(data, "training data file")
    if not data.is_file():
        raise DataError(f"{config.source}: training data {data} not found; check `data:`/`preferences:`")
    return TrainingIdentity(
        base_fingerprint=base_model(config).fingerprint,
        data_sha256=file_sha256(data),
        config_fingerprint=config.fingerprint(template),
    )


def check_training_data(
    config: TrainConfig,
    items: Sequence[Item],
    template: PromptTemplate,
    suite: SuiteConfig | None,
    base: ResolvedModel,
    reporter: TrainingReporter,
    force: bool = False,
) -> None:
    """Lint the training data (``items``) and check it against the eval data.

    Raises:
        DataError: lint refused the data (and neither ``force`` nor ``data_checks.force``),
            or an eval item leaks into the training data. Every finding and every leaked
            pair is reported through ``reporter`` first.
    """
    from transformers import AutoTokenizer

    data = config.training_data_path
    if config.method == "sft":
        tokenizer = AutoTokenizer.from_pretrained(str(base.path))
        report = lint_items(data, items, template, tokenizer, config.training.max_seq_length)
    else:
        # Preference pairs have no single output field: lint counts, duplicates, empty fields.
        report = lint_items(data, items)
    for finding in report.findings:
        reporter.note(f"lint {finding.severity}: {finding.message}")
    report.raise_if_refused(force or config.data_checks.force)
    eval_path = config.eval_data_path(suite)
    if eval_path is None:
        reporter.note("no eval data named (`eval_data:` or `suite:`); the leakage check was skipped")
        return
    checks = config.data_checks
    leaks = find_leaks(items, load_items(eval_path), checks.leakage_field, checks.leakage_threshold)
    if leaks:
        for leak in leaks:
            reporter.note(f"leak: {leak.describe()}: {leak.eval_text!r} ~ {leak.train_text!r}")
        raise leakage_error(data, eval_path, leaks)


def train_adapter(
    config: TrainConfig, reporter: TrainingReporter | None = None, force: bool = False,
    replace_output: bool = False,
) -> Manifest:
    """Check the data, train the adapter the config describes, and write it with its manifest.

    Args:
        config: the training config (``method`` picks SFT or DPO).
        reporter: receives notes and progress; default silent.
        force: train despite data lint refusals (leakage always stops training).
        replace_output: replace ``output_dir`` even when evalkit did not make it.

    Returns:
        The manifest written beside the adapter in ``config.output_path``.

    Raises:
        BackendUnavailable: ``qlora`` on a machine without CUDA (or bitsandbytes).
        ConfigError: the config's suite or prompt is unusable.
        DataError: lint refused the data, or eval items leak into it.
        ModelError: the base model does not resolve or load.
        OutputExists: ``output_dir`` holds files evalkit did not make (and not ``replace_output``).
    """
    from evalkit.train.lora import replay_records, train_dpo, train_sft

    reporter = reporter or SilentReporter()
    if config.qlora:
        require_qlora_support()
    check_replaceable(config.output_path, force=replace_output)
    suite = config.load_suite()
    template = config.prompt_template(suite)
    base = base_model(config)
    data = config.training_data_path
    data_items = load_items(data)
    check_training_data(config, data_items, template, suite, base, reporter, force)
    replay_path = config.replay_data_path
    if replay_path is not None and not replay_path.is_file():
        raise DataError(f"{config.source}: replay.data: {replay_path} not found; point it at a JSONL of "
                        "prompt/completion lines (data/replay/make_replay.py builds one)")
    replay_items = load_items(replay_path) if replay_path is not None else []
    loaded = load_training_model(base.path, config)
    replay = (replay_records(replay_items, replay_path, loaded.tokenizer, config.training.max_seq_length)
              if replay_path is not None else [])
    if replay:
        reporter.note(f"replay: {len(replay)} turns of general text from {replay_path} mixed into "
                      f"{len(data_items)} examples")
    named_base = not config.resolve(config.model).exists()
    with staged_directory(config.output_path, kind="adapter", force=replace_output) as staging:
        if config.method == "dpo":
            trained = train_dpo(config, loaded, data_items, staging, reporter)
        else:
            trained = train_sft(config, loaded, template, data_items, staging, reporter, replay)
        manifest = Manifest(
            kind="adapter",
            method=config.method,
            base_source=config.model,
            base_fingerprint=base.fingerprint,
            # A named base (the embedded model) resolves on any machine: no local path.
            base_path="" if named_base else str(base.path),
            data_path=str(data),
            data_sha256=file_sha256(data),
            data_examples=len(data_items),
            config=config.describe(template),
            config_fingerprint=config.fingerprint(template),
            prompt_hash=template_hash(template),
            leakage_field=config.data_checks.leakage_field,
            loss_curve=trained.loss_curve,
            trainable_parameters=trained.trainable_parameters,
            total_parameters=trained.total_parameters,
            seconds=round(trained.seconds, 2),
            evalkit_version=evalkit_version(),
            command=command_line(),
            machine=describe_machine("bfloat16" if loaded.bf16 else "float32"),
            replay_path=str(replay_path) if replay_path is not None else "",
            replay_sha256=file_sha256(replay_path) if replay_path is not None else "",
            replay_examples=len(replay),
        )
        if named_base:
            # The checkpoints too: none may carry this machine's cache path.
            for adapter_dir in [staging, *sorted((staging / CHECKPOINTS_DIR).glob("checkpoint-*"))]:
                record_base_name(adapter_dir, config.model)
        # On disk the data path is relative to the adapter, so the adapter can be shipped.
        write_manifest(staging, replace(
            manifest, data_path=portable_path(data, config.output_path),
            replay_path=portable_path(replay_path, config.output_path) if replay_path is not None else ""))
    final = manifest.loss_curve[-1]["loss"] if manifest.loss_curve else float("nan")
    reporter.note(
        f"saved adapter {config.output_path} ({config.method}, {trained.seconds:.0f} s, final loss {final:.4f})"
    )
    return manifest
