"""The training config (``train/*.yaml``): what to train, on which data, with which prompt.

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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from evalkit.errors import ConfigError
from evalkit.files.home import json_digest
from evalkit.files.yaml_source import StrictModel, load_model_from_yaml
from evalkit.prompting import PromptTemplate, prompt_for_candidate
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
