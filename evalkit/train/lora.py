"""What SFT and DPO share: loading the base for training, the LoRA config, saving.

QLoRA loads the base in 4-bit NF4 through bitsandbytes, which needs CUDA: on a CPU-only
machine :func:`require_qlora_support` stops before anything is loaded. On a CPU,
bfloat16 training loads the base weights in bf16 (peft keeps the LoRA matrices and their
optimizer state in float32) without autocast: on a CPU with AVX512-BF16/AMX that is the
fast path, so ``auto`` takes it there; on a CPU without them bf16 is emulated and many
times slower than float32, so ``auto`` is float32 there (see :func:`training_in_bf16`).

Also in this module:

* Supervised fine-tuning of a LoRA adapter with trl's ``SFTTrainer``.
* Direct preference optimisation of a LoRA adapter with trl's ``DPOTrainer``.
* ``evalkit merge ADAPTER --out DIR``: fold a LoRA adapter into its base, for serving alone.
* How training reports progress without touching the terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evalkit.data.items import Item
from evalkit.errors import BackendUnavailable, DataError, ModelError
from evalkit.files.home import check_replaceable, staged_directory
from evalkit.models.sources import ResolvedModel, adapter_fingerprint, resolve_model
from evalkit.progress import Progress, library_bars_silenced
from evalkit.prompting import PromptTemplate
from evalkit.record.run_facts import cpu_has_native_bf16, evalkit_version, utc_now
from evalkit.train.config import LoraSettings, Manifest, TrainConfig, read_manifest, write_manifest


class TrainingReporter(Protocol):
    """Receives training events."""

    def note(self, text: str) -> None:
        """Tell the user something (trainable parameters, lint warnings, the saved path)."""
        ...

    def start(self, label: str, total_steps: int) -> None:
        """Training of ``total_steps`` optimizer updates begins."""
        ...

    def step(self, step: int, loss: float | None) -> None:
        """Update ``step`` is done; ``loss`` is set when a training loss was logged at it.

        A step can be reported twice: once when it ends, once more when its loss is logged.
        """
        ...

    def finish(self) -> None:
        """Training is over."""
        ...


class SilentReporter:
    """A reporter that draws nothing and keeps notes and losses for inspection."""

    def __init__(self) -> None:
        """Start empty."""
        self.notes: list[str] = []
        self.losses: list[float] = []
        self.steps = 0

    def note(self, text: str) -> None:
        """Keep the note."""
        self.notes.append(text)

    def start(self, label: str, total_steps: int) -> None:
        """Ignore the start."""

    def step(self, step: int, loss: float | None) -> None:
        """Count the step and keep the loss."""
        self.steps = step
        if loss is not None:
            self.losses.append(loss)

    def finish(self) -> None:
        """Ignore the end."""


class ProgressReporter:
    """Adapts a run's :class:`~evalkit.progress.Progress` to a training reporter.

    Args:
        progress: where steps go (rich bars on a terminal, plain lines in CI).
        loss_step: with a value, the latest logged loss is also noted each time another
            such fraction of the steps is done (0.1: ten loss lines over a run).
    """

    def __init__(self, progress: Progress, loss_step: float | None = None) -> None:
        """Report to ``progress``."""
        self._progress = progress
        self._done = 0
        self._total = 0
        self._loss_step = loss_step
        self._loss_noted_at = 0

    def note(self, text: str) -> None:
        """Forward the note."""
        self._progress.note(text)

    def start(self, label: str, total_steps: int) -> None:
        """Open a bar of ``total_steps``."""
        self._done = self._loss_noted_at = 0
        self._total = total_steps
        self._progress.start(label, total_steps)

    def step(self, step: int, loss: float | None) -> None:
        """Advance the bar to ``step``; note the loss when another ``loss_step`` of the run is done."""
        self._progress.advance(step - self._done)
        self._done = step
        if loss is None or self._loss_step is None:
            return
        every = max(1, round(self._total * self._loss_step)) if self._total > 0 else 1
        if step - self._loss_noted_at >= every or (self._total > 0 and step >= self._total):
            self._loss_noted_at = step
            self._progress.note(f"step {step}/{self._total}: loss {loss:.4f}")

    def finish(self) -> None:
        """Close the bar."""
        self._progress.finish()


def reporter_callback(reporter: TrainingReporter, label: str) -> Any:
    """Return a transformers ``TrainerCallback`` that forwards steps and losses to ``reporter``."""
    from transformers import TrainerCallback

    class _ReporterCallback(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.start(label, int(state.max_steps))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                reporter.step(int(state.global_step), float(logs["loss"]))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.step(int(state.global_step), None)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.finish()

    return _ReporterCallback()


# What SFT and DPO share: loading the base for training, the LoRA config, saving.

def require_qlora_support() -> None:
    """Stop at once unless 4-bit QLoRA can run here (a CUDA GPU and bitsandbytes).

    Raises:
        BackendUnavailable: no CUDA GPU, or bitsandbytes is not installed (exit code 2).
    """
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "--qlora loads the base model in 4-bit with bitsandbytes, which needs a CUDA GPU, and this "
            "machine has none; train without --qlora (LoRA on the full-precision base) or use a GPU machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise BackendUnavailable("--qlora needs bitsandbytes: pip install bitsandbytes") from None


@dataclass
class TrainingModel:
    """A base model loaded for training.

    Attributes:
        model: the transformers model (4-bit when QLoRA).
        tokenizer: its tokenizer, with a pad token.
        on_cpu: whether training runs on the CPU.
        bf16: whether training runs in bfloat16 (bf16 weights on a CPU, autocast on a GPU).
    """

    model: Any
    tokenizer: Any
    on_cpu: bool
    bf16: bool


def load_training_model(model_dir: Path, config: TrainConfig) -> TrainingModel:
    """Load the base model and tokenizer as ``config`` asks (QLoRA, precision).

    Raises:
        BackendUnavailable: QLoRA asked for where it cannot run.
        ModelError: the model does not load.
    """
    with quiet_libraries():
        return _load_training_model(model_dir, config)


def _load_training_model(model_dir: Path, config: TrainConfig) -> TrainingModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.qlora:
        require_qlora_support()
    on_cpu = not torch.cuda.is_available()
    bf16 = training_in_bf16(config.training.precision, on_cpu)
    options: dict[str, Any] = {"dtype": torch.bfloat16 if bf16 else torch.float32}
    if config.qlora:
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        options["dtype"] = torch.bfloat16
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), **options)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {model_dir} failed to load for training: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return TrainingModel(model=model, tokenizer=tokenizer, on_cpu=on_cpu, bf16=bf16)


def training_in_bf16(precision: str, on_cpu: bool) -> bool:
    """Whether training runs in bfloat16 for ``precision`` on this machine.

    ``auto`` is bfloat16 on a GPU and on a CPU that multiplies bf16 natively (AVX512-BF16
    or AMX), float32 on any other CPU (where bf16 is emulated and many times slower).
    """
    if precision == "auto":
        if not on_cpu:
            return True

        return cpu_has_native_bf16()
    return precision == "bfloat16"


def lora_config(settings: LoraSettings) -> Any:
    """Return the peft ``LoraConfig`` for a causal LM from the config's LoRA settings."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        layers_to_transform=list(settings.layers) if settings.layers is not None else None,
        bias=settings.bias,
        task_type="CAUSAL_LM",
    )


def parameter_counts(model: Any) -> tuple[int, int]:
    """Return (trainable, total) parameters of a peft model."""
    trainable, total = model.get_nb_trainable_parameters()
    return int(trainable), int(total)


def describe_parameters(trainable: int, total: int) -> str:
    """Return ``trainable parameters: 1,843,200 of 136,358,976 (1.35%)``."""
    return f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"


def loss_curve(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Return the logged training losses as ``{"step", "epoch", "loss"}`` records."""
    return [
        {"step": float(entry["step"]), "epoch": float(entry.get("epoch", 0.0)), "loss": float(entry["loss"])}
        for entry in log_history
        if "loss" in entry and "step" in entry
    ]


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Turn off datasets', transformers' and huggingface_hub's bars for the block, then restore them.

    The reporter draws instead; a user's process keeps its own bars outside evalkit's
    training (see :func:`evalkit.progress.library_bars_silenced`). The libraries are
    imported first, so their bars are off even when this block is what first loads them.
    """
    import datasets  # noqa: F401  (imported so that their bars can be switched off)
    import huggingface_hub.utils  # noqa: F401
    import transformers.utils.logging  # noqa: F401

    with library_bars_silenced():
        yield


def quiet_trainer(trainer: Any) -> None:
    """Stop a trainer printing its log dicts: the reporter shows the loss instead."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def training_seed(config: TrainConfig) -> None:
    """Seed python, numpy and torch for a reproducible run."""
    from transformers import set_seed

    set_seed(config.training.seed)


@dataclass
class TrainedAdapter:
    """What a finished training run reports (the adapter itself is saved to disk).

    Attributes:
        trainable_parameters: parameters the adapter trained.
        total_parameters: parameters of the whole model.
        loss_curve: ``{"step", "epoch", "loss"}`` per logged step.
        seconds: wall time of the training loop.
    """

    trainable_parameters: int
    total_parameters: int
    loss_curve: list[dict[str, float]]
    seconds: float


def trainer_arguments(config: TrainConfig, loaded: TrainingModel, work_dir: Path) -> dict[str, Any]:
    """Return the ``TrainingArguments`` fields SFT and DPO share."""
    settings = config.training
    return {
        "output_dir": str(work_dir),
        "use_cpu": loaded.on_cpu,
        # On a CPU the weights themselves are bf16 (LoRA matrices stay float32 in peft);
        # the trainer's bf16 flag would add autocast, which made CPU steps slower.
        "bf16": loaded.bf16 and not loaded.on_cpu,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps if settings.max_steps is not None else -1,
        "warmup_steps": settings.warmup_ratio,
        "lr_scheduler_type": "linear",
        "logging_steps": 1,
        # save_steps: the trainer writes checkpoint-N (model only) to work_dir; fit_and_save keeps them.
        "save_strategy": "steps" if settings.save_steps else "no",
        **({"save_steps": settings.save_steps, "save_only_model": True} if settings.save_steps else {}),
        "report_to": [],
        "disable_tqdm": True,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "dataloader_num_workers": 0,
        "gradient_checkpointing": settings.gradient_checkpointing,
    }


CHECKPOINTS_DIR = "checkpoints"
"""Where, inside an adapter's directory, ``training.save_steps`` checkpoints are kept."""
_CHECKPOINT_FILES = ("adapter_config.json", "adapter_model.safetensors", "trainer_state.json")


def keep_checkpoints(work_dir: Path, target: Path) -> list[Path]:
    """Copy the adapter files of every ``checkpoint-N`` the trainer saved in ``work_dir`` into ``target``.

    Returns:
        The copied checkpoint directories, in step order (none without ``save_steps``).
    """
    import shutil

    found = sorted((int(folder.name.split("-")[1]), folder) for folder in work_dir.glob("checkpoint-*")
                   if folder.name.split("-")[1].isdigit() and (folder / "adapter_config.json").is_file())
    kept = []
    for step, folder in found:
        destination = target / f"checkpoint-{step}"
        destination.mkdir(parents=True, exist_ok=True)
        for name in _CHECKPOINT_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, destination / name)
        kept.append(destination)
    return kept


def fit_and_save(trainer: Any, out_dir: Path, reporter: TrainingReporter) -> TrainedAdapter:
    """Train with a configured trl trainer (SFT or DPO) and save the adapter files into ``out_dir``.

    Reports the trainable parameter count first; the trainer's own log printing is
    turned off because the reporter shows the loss.
    """
    quiet_trainer(trainer)
    model: Any = trainer.model
    trainable, total = parameter_counts(model)
    reporter.note(describe_parameters(trainable, total))
    started = time.perf_counter()
    # max_steps 0: no update at all, the adapter is saved as peft initialised it (B = 0, a no-op).
    if trainer.args.max_steps != 0:
        trainer.train()
    seconds = time.perf_counter() - started
    model.save_pretrained(str(out_dir))
    keep_checkpoints(Path(trainer.args.output_dir), out_dir / CHECKPOINTS_DIR)
    return TrainedAdapter(trainable, total, loss_curve(trainer.state.log_history), seconds)


def fit_lora_trainer(
    trainer_class: Any,
    method: str,
    config: TrainConfig,
    loaded: TrainingModel,
    arguments: Any,
    dataset: Any,
    out_dir: Path,
    reporter: TrainingReporter,
    **extra: Any,
) -> TrainedAdapter:
    """Build a trl trainer (SFT or DPO) with a fresh LoRA adapter, train it and save the adapter.

    Args:
        trainer_class: trl's trainer class (``SFTTrainer``, ``DPOTrainer``).
        method: the method's short name shown in the progress label (``sft``, ``dpo``).
        config: the training config.
        loaded: the base model and tokenizer.
        arguments: the trainer's config object (``SFTConfig``, ``DPOConfig``).
        dataset: the training records.
        out_dir: an empty directory the adapter is saved to.
        reporter: receives the parameter count and per-step progress with the loss.
        extra: keyword arguments only this trainer takes.
    """
    trainer = trainer_class(
        model=loaded.model,
        args=arguments,
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        peft_config=lora_config(config.lora),
        callbacks=[reporter_callback(reporter, f"training {config.output_path.name} ({method})")],
        **extra,
    )
    return fit_and_save(trainer, out_dir, reporter)


# Supervised fine-tuning of a LoRA adapter with trl's ``SFTTrainer``.
#
# Each example becomes a *conversational prompt/completion* pair: the prompt is the chat
# messages :class:`~evalkit.prompting.PromptTemplate` renders for evaluation, the
# completion is the assistant message with the expected answer. trl applies the model's
# chat template to both and masks the prompt, so the loss covers only the answer (and the
# end-of-turn token that teaches the model to stop).

def sft_records(template: PromptTemplate, items: Sequence[Item], source: Path) -> list[dict[str, Any]]:
    """Return the conversational prompt/completion records trl trains on.

    Raises:
        DataError: an item lacks a field the template needs (names file and line).
    """
    records = []
    for item in items:
        where = f"{source}:{item.line}"
        answer = template.expected_output(item.fields, where)
        records.append({
            "prompt": template.messages(item.fields, where),
            "completion": [{"role": "assistant", "content": answer}],
        })
    return records


# Replay (``replay:`` in the config): general text mixed into the task's examples. Each
# line is one chat turn rendered with the model's own chat template (not the task's prompt,
# whose system message asks for JSON), so the loss covers human-written text the base model
# already predicts well and pulls the adapter back towards it.

def replay_records(items: Sequence[Item], source: Path, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Return the replay file's lines as conversational prompt/completion records.

    Raises:
        DataError: a line lacks a non-empty ``prompt`` or ``completion`` string, or the
            rendered turn is longer than ``max_length`` tokens (trl would cut it silently).
    """
    records = []
    for item in items:
        where = f"{source}:{item.line}"
        texts = {key: item.fields.get(key) for key in ("prompt", "completion")}
        bad = [key for key, text in texts.items() if not isinstance(text, str) or not text.strip()]
        if bad:
            raise DataError(f"{where}: `{bad[0]}` must be a non-empty string; each replay line needs "
                            "prompt and completion")
        record = {"prompt": [{"role": "user", "content": texts["prompt"]}],
                  "completion": [{"role": "assistant", "content": texts["completion"]}]}
        rendered = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)
        length = len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        if length > max_length:
            raise DataError(f"{where}: the replay turn is {length} tokens, over training.max_seq_length "
                            f"{max_length}; shorten it or raise max_seq_length")
        records.append(record)
    return records


def train_sft(
    config: TrainConfig,
    loaded: TrainingModel,
    template: PromptTemplate,
    items: Sequence[Item],
    out_dir: Path,
    reporter: TrainingReporter,
    replay: Sequence[dict[str, Any]] = (),
) -> TrainedAdapter:
    """Train a LoRA adapter on ``items`` and save it (adapter files only) into ``out_dir``.

    Args:
        config: the training config.
        loaded: the base model and tokenizer.
        template: the prompt template (the suite's).
        items: the training examples.
        out_dir: an empty directory the adapter is saved to.
        reporter: receives the parameter count and per-step progress with the loss.
        replay: general-text records (:func:`replay_records`) trained on beside the examples.
    """
    from datasets import Dataset
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    training_seed(config)
    dataset = Dataset.from_list(sft_records(template, items, config.training_data_path) + list(replay))
    with quiet_libraries(), tempfile.TemporaryDirectory(prefix="evalkit-sft-") as work_dir:
        arguments = SFTConfig(
            **trainer_arguments(config, loaded, Path(work_dir)),
            max_length=config.training.max_seq_length,
            completion_only_loss=True,
            packing=False,
            train_sampling_strategy="group_by_length" if config.training.group_by_length else "random",
        )
        return fit_lora_trainer(SFTTrainer, "sft", config, loaded, arguments, dataset, out_dir, reporter)


# Direct preference optimisation of a LoRA adapter with trl's ``DPOTrainer``.
#
# The preference file is JSONL with ``prompt``, ``chosen`` and ``rejected`` on every line
# (trl's format). ``prompt`` is either a list of chat messages (the shipped classifier set
# holds the messages the suite's template renders, so the prompts match evaluation) or a
# string, taken as one user message. ``chosen``/``rejected`` are the answers as strings (or
# a one-message assistant list). The model is the base with a fresh LoRA adapter; the
# reference is the same model with the adapter disabled, i.e. the frozen base, so no
# second copy of the weights is held.

Message = dict[str, str]


def _messages(value: Any, role: str, where: str, key: str) -> list[Message]:
    if isinstance(value, str) and value.strip():
        return [{"role": role, "content": value}]
    if isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise DataError(
        f"{where}: '{key}' must be a non-empty string or a list of {{role, content}} messages"
    )


def preference_records(items: Sequence[Item], source: Path) -> list[dict[str, list[Message]]]:
    """Return trl's conversational preference records from the preference file's items.

    Raises:
        DataError: a line lacks ``prompt``/``chosen``/``rejected`` or has the wrong shape;
            the message names the file and line.
    """
    records = []
    for item in items:
        where = f"{source}:{item.line}"
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in item.fields]
        if missing:
            raise DataError(f"{where}: missing {', '.join(missing)}; each line needs prompt, chosen, rejected")
        chosen = _messages(item.fields["chosen"], "assistant", where, "chosen")
        rejected = _messages(item.fields["rejected"], "assistant", where, "rejected")
        if chosen == rejected:
            raise DataError(f"{where}: chosen equals rejected; a preference pair needs two different answers")
        records.append({
            "prompt": _messages(item.fields["prompt"], "user", where, "prompt"),
            "chosen": chosen,
            "rejected": rejected,
        })
    return records


def train_dpo(
    config: TrainConfig,
    loaded: TrainingModel,
    items: Sequence[Item],
    out_dir: Path,
    reporter: TrainingReporter,
) -> TrainedAdapter:
    """Train a LoRA adapter by DPO on preference pairs and save it into ``out_dir``.

    Args:
        config: the training config (``dpo.beta``, training settings).
        loaded: the base model and tokenizer.
        items: the preference file's lines.
        out_dir: an empty directory the adapter is saved to.
        reporter: receives the parameter count and per-step progress with the loss.
        replay: general-text records (:func:`replay_records`) trained on beside the examples.
    """
    from datasets import Dataset
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    training_seed(config)
    dataset = Dataset.from_list(preference_records(items, config.training_data_path))
    with quiet_libraries(), tempfile.TemporaryDirectory(prefix="evalkit-dpo-") as work_dir:
        arguments = DPOConfig(
            **trainer_arguments(config, loaded, Path(work_dir)),
            beta=config.dpo.beta,
            max_length=config.training.max_seq_length,
        )
        return fit_lora_trainer(DPOTrainer, "dpo", config, loaded, arguments, dataset, out_dir, reporter,
                                ref_model=None)  # with a peft model, the reference is the adapter disabled


# ``evalkit merge ADAPTER --out DIR``: fold a LoRA adapter into its base, for serving alone.
#
# The merged model (``merge_and_unload``) is saved in float32 with the base's tokenizer, so
# it loads like any Hugging Face model directory, and carries a manifest: the adapter's
# (data, config, loss curve) plus the adapter it came from and that adapter's hash, so a
# merged model whose adapter was retrained is known to be stale.

def adapter_base(adapter: Path, manifest: Manifest | None, model: str | None) -> ResolvedModel:
    """Resolve the base an adapter goes onto: ``model`` if given, else the recorded base.

    Raises:
        ModelError: no base is known, it does not resolve, or its fingerprint differs
            from the one the adapter was trained on.
    """
    if model is not None:
        base = resolve_model(model, Path.cwd())
    elif manifest is not None:
        # A shipped adapter records no local path for a named base (the embedded model).
        recorded = Path(manifest.base_path) if manifest.base_path else None
        base = (resolve_model(str(recorded)) if recorded is not None and recorded.is_dir()
                else resolve_model(manifest.base_source))
    else:
        # torch and transformers: loaded only here
        from evalkit.models.hf import adapter_base_model

        name = adapter_base_model(adapter)
        if name is None:
            raise ModelError(f"adapter {adapter}: no manifest and no base recorded; pass --model BASE")
        base = resolve_model(name)
    if manifest is not None and manifest.base_fingerprint != base.fingerprint:
        raise ModelError(
            f"adapter {adapter} was trained on a base with fingerprint {manifest.base_fingerprint[:12]}, but "
            f"'{base.source}' has {base.fingerprint[:12]}; use the base it was trained on (or retrain it)"
        )
    return base


def merge_adapter(
    adapter: Path, out: Path, model: str | None = None, reporter: TrainingReporter | None = None,
    force: bool = False,
) -> Manifest:
    """Merge ``adapter`` into its base and save a standalone model to ``out``.

    Args:
        adapter: a peft adapter directory (ideally with an evalkit manifest).
        out: the merged model's directory; an existing one is replaced only when it is
            empty or evalkit made it (see :mod:`evalkit.files.home`), or with ``force``.
        model: the base model source; default the base recorded in the adapter.
        reporter: receives a note when done; default silent.
        force: replace ``out`` even when evalkit did not make it.

    Returns:
        The merged model's manifest.

    Raises:
        ModelError: the adapter or its base is missing, mismatched or fails to load.
        OutputExists: ``out`` holds files evalkit did not make (checked before loading).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reporter = reporter or SilentReporter()
    adapter = adapter.resolve()
    check_replaceable(out.resolve(), force=force)
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"adapter {adapter}: no adapter_config.json there; train it first with `evalkit train`")
    manifest = read_manifest(adapter)
    base = adapter_base(adapter, manifest, model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base.path))
        model_object = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
        merged = PeftModel.from_pretrained(model_object, str(adapter)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"merging {adapter} into '{base.source}' failed: {exc}") from None
    if manifest is None:
        manifest = Manifest(kind="merged", method="unknown", base_source=base.source,
                            base_fingerprint=base.fingerprint, base_path=str(base.path), data_path="",
                            data_sha256="", data_examples=0, config={}, config_fingerprint="", prompt_hash="")
    merged_manifest = dataclasses.replace(
        manifest, kind="merged", adapter_path=str(adapter), adapter_hash=adapter_fingerprint(adapter),
        evalkit_version=evalkit_version(), created_at=utc_now(),
    )
    with staged_directory(out.resolve(), kind="merged model", force=force) as staging:
        merged.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        write_manifest(staging, merged_manifest)
    reporter.note(f"saved merged model {out} (from {adapter})")
    return merged_manifest
