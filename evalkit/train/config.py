"""The training config (``train/*.yaml``: what to train, on which data, with which prompt) and the manifest.

Example (``train/classifier-lora.yaml``)::

    method: sft                        # or dpo
    model: smollm2-135m-instruct
    suite: ../suites/classifier.yaml   # the prompt comes from this suite ...
    data: ../data/classifier/train.jsonl
    preferences: ../data/classifier/preferences.jsonl   # for method: dpo
    output_dir: ../adapters/classifier-lora
    lora: {r: 16, alpha: 32, dropout: 0.05}
    training: {epochs: 2, learning_rate: 1.0e-3, batch_size: 8}

The prompt decision: a train config either names the suite whose prompt it uses
(``suite:``, optionally ``candidate:`` for that candidate's prompt override), or carries
a ``prompt:`` block of the same shape as a suite's. Either way the prompt is rendered by
:class:`evalkit.prompting.PromptTemplate`, the code evaluation uses, and the resolved
template is part of the adapter's manifest, so a changed suite prompt makes the adapter
stale and ``evalkit run`` retrains it. Paths are relative to the config file.

Also here:

* The ``manifests`` section, and the manifest itself: what made a candidate's weights (:class:`Manifest`,
  :class:`TrainingIdentity`).
* The identity file every adapter and merged model carries, ``evalkit-manifest.json`` (:func:`write_manifest`,
  :func:`read_manifest`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from evalkit.errors import ConfigError, DataError, ModelError
from evalkit.files.home import file_sha256, json_digest
from evalkit.files.yaml_source import StrictModel, load_model_from_yaml
from evalkit.prompting import PromptTemplate, prompt_for_candidate
from evalkit.record.run_facts import SPEED_FLAGS, cpu_flags, cpu_model, utc_now
from evalkit.record.sections import parse_section
from evalkit.suite.config import CandidateConfig, PromptConfig, SuiteConfig, load_suite

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


class LoraSettings(StrictModel):
    """The peft ``LoraConfig`` of the adapter."""

    r: int = Field(default=16, ge=1, le=1024)
    """Rank of the low-rank update."""
    alpha: int = Field(default=32, ge=1)
    """Scaling numerator: the update is scaled by ``alpha / r``."""
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Dropout on the LoRA input during training."""
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGET_MODULES), min_length=1)
    """Module names that get an adapter (the attention projections by default)."""
    bias: Literal["none", "all", "lora_only"] = "none"
    """Which biases are trained."""
    layers: list[int] | None = Field(default=None, min_length=1)
    """Decoder layer indices that get adapters (default: all). Adapting only the top
    layers makes a CPU step cheaper: the backward pass stops at the lowest adapted layer."""


class TrainingSettings(StrictModel):
    """Optimisation settings."""

    epochs: float = Field(default=2.0, gt=0.0, le=100.0)
    """Passes over the training data."""
    learning_rate: float = Field(default=2e-4, gt=0.0, lt=1.0)
    """Peak learning rate (linear decay after warm-up)."""
    batch_size: int = Field(default=8, ge=1, le=1024)
    """Examples per device step."""
    gradient_accumulation: int = Field(default=1, ge=1, le=1024)
    """Steps whose gradients add up before one optimizer update."""
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Share of the updates spent warming the learning rate up from zero."""
    max_seq_length: int = Field(default=512, ge=16, le=131072)
    """Longest prompt + completion in tokens; data lint refuses longer examples."""
    seed: int = 0
    """Seed of data order, dropout and adapter initialisation."""
    max_steps: int | None = Field(default=None, ge=0)
    """Stop after this many optimizer updates (a quick try); default: run every epoch. ``0``
    saves the adapter as initialised, untrained: LoRA's B matrices start at zero, so it
    changes nothing (the no-op control, ``train/classifier-lora-noop.yaml``)."""
    save_steps: int | None = Field(default=None, ge=1)
    """Also save the adapter every N optimizer updates, as ``checkpoints/checkpoint-N`` inside
    the output directory (what a suite's ``sweep:`` evaluates); default: only the final one."""
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """Training precision: ``bfloat16`` runs the base weights in bf16 (autocast on a GPU;
    the LoRA matrices stay float32); ``auto`` is bfloat16 on a GPU and on a CPU with native
    bf16 (AVX512-BF16/AMX), float32 on other CPUs, where bf16 is emulated and slow."""
    group_by_length: bool = True
    """SFT: batch examples of similar length together (random order of the batches), so
    less compute goes to padding."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more
    compute per step (trl turns it on by default; a LoRA on a small model rarely needs it)."""


class DPOSettings(StrictModel):
    """Direct preference optimisation settings (``method: dpo``)."""

    beta: float = Field(default=0.1, gt=0.0, le=10.0)
    """Strength of the pull towards the reference (the base, adapter disabled)."""


class DataCheckSettings(StrictModel):
    """The data gates run before training."""

    force: bool = False
    """Train despite lint refusals (too few examples, mixed formats, duplicates...)."""
    leakage_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    """Word-trigram overlap at which an eval input counts as leaked into training."""
    leakage_field: str = "input"
    """The item field compared between training and evaluation data."""


class ReplaySettings(StrictModel):
    """General text mixed into SFT training ("replay"), one remedy for lost general capability."""

    data: str
    """JSONL of chat turns mixed into the task's examples, one per line: ``prompt`` (the user
    message) and ``completion`` (the reply trained on), e.g. ``data/replay/handbook.jsonl``.
    They are rendered with the model's own chat template, not the task's prompt, and every
    line is used once per epoch: the file's size against the data's sets the mix."""


class TrainConfig(StrictModel):
    """A whole training config file."""

    method: Literal["sft", "dpo"] = "sft"
    """Supervised fine-tuning on examples, or DPO on preference pairs."""
    model: str = "smollm2-135m-instruct"
    """Base model source, as in a suite's ``model:``."""
    suite: str | None = None
    """The suite whose prompt the training uses (and whose dataset is the eval data)."""
    candidate: str | None = None
    """Use this suite candidate's prompt override (default: the suite prompt)."""
    prompt: PromptConfig | None = None
    """A prompt block instead of ``suite:`` (same shape as a suite's ``prompt:``)."""
    data: str | None = None
    """Training examples (JSONL/CSV with the prompt's fields, e.g. instruction/input/output)."""
    preferences: str | None = None
    """Preference pairs for DPO: JSONL with ``prompt``, ``chosen``, ``rejected``."""
    eval_data: str | None = None
    """Evaluation data the leakage check compares with; default: the suite's dataset."""
    output_dir: str
    """Where the adapter (and its manifest) is written."""
    qlora: bool = False
    """Load the base in 4-bit with bitsandbytes (needs a CUDA GPU)."""
    lora: LoraSettings = Field(default_factory=LoraSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    data_checks: DataCheckSettings = Field(default_factory=DataCheckSettings)
    replay: ReplaySettings | None = None
    """General text mixed into training (SFT only); default: none."""

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainConfig:
        if (self.suite is None) == (self.prompt is None):
            raise ValueError(
                "give exactly one of `suite:` (use that suite's prompt) or `prompt:` (a prompt block), "
                "so training and evaluation render the same prompt"
            )
        if self.candidate is not None and self.suite is None:
            raise ValueError("`candidate:` picks a prompt from `suite:`; add `suite:` or remove it")
        if self.method == "sft" and self.data is None:
            raise ValueError("method sft needs `data:` (a JSONL of training examples)")
        if self.method == "dpo" and self.preferences is None:
            raise ValueError("method dpo needs `preferences:` (a JSONL with prompt, chosen, rejected)")
        if self.replay is not None and self.method != "sft":
            raise ValueError("replay: mixes general text into SFT examples; method dpo trains on pairs, remove it")
        if self.prompt is not None and self.prompt.few_shot:
            raise ValueError("prompt.few_shot: few-shot prompts are not trained on; set it to 0")
        return self

    @property
    def source(self) -> Path:
        """The file this config was loaded from (a stand-in in the cwd if built in code)."""
        return self._source if self._source is not None else Path.cwd() / "train.yaml"

    def resolve(self, relative: str) -> Path:
        """Resolve a path written in the config against the config file's directory."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (self.source.parent / path).resolve()

    @property
    def output_path(self) -> Path:
        """The adapter directory."""
        return self.resolve(self.output_dir)

    @property
    def training_data_path(self) -> Path:
        """The file the chosen method trains on (examples for SFT, pairs for DPO)."""
        relative = self.preferences if self.method == "dpo" else self.data
        assert relative is not None  # guaranteed by the validator
        return self.resolve(relative)

    @property
    def replay_data_path(self) -> Path | None:
        """The replay file (``replay.data``), or None when nothing is mixed in."""
        return self.resolve(self.replay.data) if self.replay is not None else None

    def load_suite(self) -> SuiteConfig | None:
        """Load the suite named by ``suite:`` (None when the config carries a prompt block).

        Raises:
            ConfigError: the suite does not load, or ``candidate:`` is not one of its candidates.
        """
        if self.suite is None:
            return None
        suite = load_suite(self.resolve(self.suite))
        if self.candidate is not None:
            suite.candidate(self.candidate)
        return suite

    def eval_data_path(self, suite: SuiteConfig | None = None) -> Path | None:
        """The evaluation data for the leakage check: ``eval_data``, else the suite's dataset."""
        if self.eval_data is not None:
            return self.resolve(self.eval_data)
        suite = suite if suite is not None else self.load_suite()
        return suite.resolve(suite.dataset.path) if suite is not None else None

    def prompt_template(self, suite: SuiteConfig | None = None) -> PromptTemplate:
        """Return the prompt template training renders, the one evaluation renders too.

        Raises:
            ConfigError: the suite's prompt for this candidate uses few-shot examples.
        """
        if self.prompt is not None:
            return PromptTemplate(system=self.prompt.system, user=self.prompt.user, expected=self.prompt.expected)
        suite = suite if suite is not None else self.load_suite()
        assert suite is not None
        if self.candidate is not None:
            candidate = suite.candidate(self.candidate)
        else:
            candidate = CandidateConfig(name="train", model=self.model)
        few_shot = suite.prompt.few_shot
        if candidate.prompt is not None and candidate.prompt.few_shot is not None:
            few_shot = candidate.prompt.few_shot
        if few_shot:
            raise ConfigError(
                f"{self.source}: suite: the prompt of {suite.source} uses few_shot={few_shot}; "
                "training does not use few-shot prompts: point `candidate:` at a zero-shot candidate"
            )
        return prompt_for_candidate(suite, candidate)

    def describe(self, template: PromptTemplate) -> dict[str, Any]:
        """Return the full config as JSON-ready data, with the resolved prompt (for the manifest)."""
        data = self.model_dump(mode="json")
        data["resolved_prompt"] = {"system": template.system, "user": template.user, "expected": template.expected}
        return data

    def fingerprint(self, template: PromptTemplate) -> str:
        """Return a SHA-256 over everything that shapes the adapter except paths and data bytes.

        The output directory is left out (moving an adapter does not change it); the data
        files are identified by their content hash in the manifest, not by their path.
        """
        data = self.describe(template)
        for key in ("output_dir", "data", "preferences", "eval_data", "suite"):
            data.pop(key, None)
        data["training"].pop("save_steps", None)  # where checkpoints go, not what the adapter is
        replay = self.replay_data_path
        if replay is not None:  # the replay text by content: a changed file makes the adapter stale
            data["replay"] = {"sha256": file_sha256(replay) if replay.is_file() else "missing"}
        else:
            data.pop("replay", None)  # configs written before replay existed keep their fingerprint
        return json_digest(data)


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Return ``config`` with some keys replaced, validated again.

    Top-level keys (``method``, ``output_dir``, ``qlora``) and ``training`` keys
    (``max_steps``, ``epochs``) can be replaced. ``None`` values are ignored, so CLI
    options that were not given change nothing.

    Raises:
        ConfigError: the changed config is invalid (e.g. ``method: dpo`` without preferences).
    """
    import pydantic

    data = config.model_dump()
    training_keys = set(TrainingSettings.model_fields)
    for key, value in changes.items():
        if value is None:
            continue
        if key in training_keys:
            data["training"][key] = value
        else:
            data[key] = value
    try:
        updated = TrainConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(config)"
        raise ConfigError(f"{config.source}: {field}: {first['msg']}") from None
    updated._source = config._source
    return updated


def load_train_config(path: str | Path) -> TrainConfig:
    """Load and validate a training config file.

    Raises:
        ConfigError: the file is missing, not YAML or invalid; names file, line and field.
    """
    source = Path(path).expanduser().resolve()
    config = load_model_from_yaml(source, TrainConfig)
    config._source = source
    return config


# The ``manifests`` section, and the manifest itself: what made a candidate's weights.
#
# :class:`Manifest` is the contents of ``evalkit-manifest.json``, the identity file every
# adapter and merged model carries (written and read here).
# The ``training`` run stage (:func:`evalkit.train.candidates.record_training`) stores,
# per candidate whose weights carry one, the manifest's JSON form: the section's type is
# the manifest dataclass itself, validated by pydantic. Manifests written before
# ``command`` and ``machine`` existed read with their defaults; a recorded manifest without
# ``created_at`` reads with ``""`` (the time it was made is unknown, not now).
#
# Also in this module:
#
# * The identity file every adapter and merged model carries: ``evalkit-manifest.json``.

@dataclass
class TrainingIdentity:
    """What an adapter trained from a config now would be: the keys staleness compares.

    Attributes:
        base_fingerprint: SHA-256 of the base model's config and weights.
        data_sha256: SHA-256 of the training data file.
        config_fingerprint: SHA-256 of the config (paths left out) and its resolved prompt.
    """

    base_fingerprint: str
    data_sha256: str
    config_fingerprint: str


@dataclass
class Manifest:
    """The contents of ``evalkit-manifest.json``, and one candidate's entry of the section.

    Attributes:
        kind: ``adapter`` for a LoRA adapter, ``merged`` for a merged standalone model.
        method: ``sft`` or ``dpo`` (``unknown`` for a merge of an adapter without a manifest).
        base_source: the base model's source string (``smollm2-135m-instruct``, a path).
        base_fingerprint: SHA-256 of the base model's config and weights.
        base_path: the local directory the base was loaded from (empty for a named base).
        data_path: the training data file, absolute (empty for a merge without an adapter manifest).
        data_sha256: SHA-256 of the training data file.
        data_examples: how many examples (or pairs) it holds.
        config: the full training config, with ``resolved_prompt``.
        config_fingerprint: see :class:`TrainingIdentity`.
        prompt_hash: hash of the prompt template trained on (as runs record it).
        leakage_field: the item field compared for leakage.
        loss_curve: ``{"step", "epoch", "loss"}`` per logged step.
        trainable_parameters: parameters the adapter trains.
        total_parameters: parameters of the whole model.
        seconds: training wall time.
        evalkit_version: the version that trained it.
        created_at: ISO timestamp (UTC).
        adapter_path: for a merged model, the adapter merged in.
        adapter_hash: for a merged model, that adapter's fingerprint when merged.
        command: the command line that trained it (program name without its directory;
            empty in manifests older than the field).
        machine: CPU model and the flags that decide training speed, cores, torch
            version and threads, and the precision training ran in (empty when older).
        replay_path: the general text mixed into training (``replay:``), absolute; empty
            when none was (and in manifests older than the field).
        replay_sha256: SHA-256 of that file (empty when none).
        replay_examples: how many replay turns it holds.
    """

    kind: Literal["adapter", "merged"]
    method: str
    base_source: str
    base_fingerprint: str
    base_path: str
    data_path: str
    data_sha256: str
    data_examples: int
    config: dict[str, Any]
    config_fingerprint: str
    prompt_hash: str
    leakage_field: str = "input"
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    trainable_parameters: int = 0
    total_parameters: int = 0
    seconds: float = 0.0
    evalkit_version: str = ""
    created_at: str = field(default_factory=utc_now)
    adapter_path: str | None = None
    adapter_hash: str | None = None
    command: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    replay_path: str = ""
    replay_sha256: str = ""
    replay_examples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)

    def mismatch(self, expected: TrainingIdentity) -> str | None:
        """Return why these weights no longer match ``expected`` (None when they match)."""
        if self.base_fingerprint != expected.base_fingerprint:
            return "its base model changed"
        if self.data_sha256 != expected.data_sha256:
            return "its training data changed"
        if self.config_fingerprint != expected.config_fingerprint:
            return "its training config or prompt changed"
        return None


def _recorded_time(data: Any) -> Any:
    """Read a recorded manifest without ``created_at`` as made at an unknown time (``""``)."""
    if isinstance(data, dict) and "created_at" not in data:
        return {**data, "created_at": ""}
    return data


CandidateManifest = Annotated[Manifest, BeforeValidator(_recorded_time)]
"""One candidate's manifest as the run records it."""

ManifestsSection = dict[str, CandidateManifest]
"""The ``manifests`` section: candidate name -> its manifest."""


# The identity file every adapter and merged model carries: ``evalkit-manifest.json``.
#
# A manifest records what made the weights beside it: the base model's fingerprint (a hash
# of its config and weights), the training data's hash, the full training config with the
# resolved prompt, the loss curve and the evalkit version. Evaluation uses it three ways:
# an adapter whose base fingerprint differs from the candidate's base is refused; an
# adapter whose config, data or base no longer match its train config is stale (``evalkit
# run`` retrains it); a run warns when its eval data overlaps the recorded training data.
# The manifest's shape, :class:`Manifest`, lives with the run section that records it
# (this module); the functions below read and write the file.

MANIFEST_NAME = "evalkit-manifest.json"


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into ``directory`` and return the file."""
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: Path) -> Manifest | None:
    """Return the manifest in ``directory``, or None when there is none.

    Raises:
        ModelError: the manifest exists but is not valid JSON of the right shape.
    """
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest: Manifest = parse_section(CandidateManifest, json.loads(path.read_text(encoding="utf-8")),
                                           str(path), f"retrain or delete {directory}")
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: unreadable manifest ({exc}); retrain or delete {directory}") from None
    except DataError as exc:
        raise ModelError(str(exc)) from None
    # A shipped adapter records its data relative to itself, so it travels with the repository.
    if manifest.data_path and not Path(manifest.data_path).is_absolute():
        manifest.data_path = str((directory / manifest.data_path).resolve())
    if manifest.replay_path and not Path(manifest.replay_path).is_absolute():
        manifest.replay_path = str((directory / manifest.replay_path).resolve())
    return manifest


def portable_path(path: Path, directory: Path) -> str:
    """Return ``path`` relative to ``directory`` (where the manifest lies), as manifests record it."""
    return os.path.relpath(path.resolve(), directory.resolve())


def command_line() -> str:
    """Return this process's command line with the program's directory left out."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""


def describe_machine(precision: str) -> dict[str, Any]:
    """Return what a manifest records about the machine that trained (see :class:`Manifest`)."""
    import torch

    return {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in cpu_flags()],
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
    }
