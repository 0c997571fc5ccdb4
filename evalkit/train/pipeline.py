"""``train_adapter``: the whole of one training run, shared by ``evalkit train`` and ``evalkit run``.

Order, cheapest refusal first: the QLoRA hardware check, the config's prompt, data lint,
the train/eval leakage check, then the model load and the chosen trainer (SFT or DPO).
The adapter is written to a staging directory that replaces ``output_dir`` only when
training and the manifest are complete, so a failed run leaves the old adapter intact;
an ``output_dir`` holding files evalkit did not make is refused before anything runs
(see :mod:`evalkit.files.safe_write`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from evalkit.data.items import Item, load_items
from evalkit.data.leakage import find_leaks, leakage_error
from evalkit.data.lint import lint_items
from evalkit.errors import DataError
from evalkit.files.home import file_sha256
from evalkit.files.safe_write import check_replaceable, staged_directory
from evalkit.files.yaml_source import refuse_non_regular_file
from evalkit.models.sources import ResolvedModel, resolve_model
from evalkit.prompting import PromptTemplate, template_hash
from evalkit.record.environment import evalkit_version
from evalkit.suite.config import SuiteConfig
from evalkit.train.config import TrainConfig
from evalkit.train.lora import (
    CHECKPOINTS_DIR,
    SilentReporter,
    TrainingReporter,
    load_training_model,
    require_qlora_support,
)
from evalkit.train.manifests import (
    Manifest,
    TrainingIdentity,
    command_line,
    describe_machine,
    portable_path,
    write_manifest,
)


def base_model(config: TrainConfig) -> ResolvedModel:
    """Resolve the config's base model (relative paths against the config file).

    Raises:
        ModelError: the source does not resolve.
    """
    return resolve_model(config.model, config.source.parent)


def record_base_name(adapter_dir: Path, source: str) -> None:
    """Write the base's source name (not this machine's cache path) into peft's adapter config."""
    path = adapter_dir / "adapter_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = source
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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
    from evalkit.train.lora import train_dpo, train_sft

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
    loaded = load_training_model(base.path, config)
    named_base = not config.resolve(config.model).exists()
    with staged_directory(config.output_path, kind="adapter", force=replace_output) as staging:
        if config.method == "dpo":
            trained = train_dpo(config, loaded, data_items, staging, reporter)
        else:
            trained = train_sft(config, loaded, template, data_items, staging, reporter)
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
        )
        if named_base:
            # The checkpoints too: none may carry this machine's cache path.
            for adapter_dir in [staging, *sorted((staging / CHECKPOINTS_DIR).glob("checkpoint-*"))]:
                record_base_name(adapter_dir, config.model)
        # On disk the data path is relative to the adapter, so the adapter can be shipped.
        write_manifest(staging, replace(manifest, data_path=portable_path(data, config.output_path)))
    final = manifest.loss_curve[-1]["loss"] if manifest.loss_curve else float("nan")
    reporter.note(
        f"saved adapter {config.output_path} ({config.method}, {trained.seconds:.0f} s, final loss {final:.4f})"
    )
    return manifest
