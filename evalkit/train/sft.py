"""Supervised fine-tuning of a LoRA adapter with trl's ``SFTTrainer``.

Each example becomes a *conversational prompt/completion* pair: the prompt is the chat
messages :class:`~evalkit.prompting.PromptTemplate` renders for evaluation, the
completion is the assistant message with the expected answer. trl applies the model's
chat template to both and masks the prompt, so the loss covers only the answer (and the
end-of-turn token that teaches the model to stop).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data.items import Item
from evalkit.prompting import PromptTemplate
from evalkit.train.config import TrainConfig
from evalkit.train.lora import (
    TrainingModel,
    describe_parameters,
    lora_config,
    loss_curve,
    parameter_counts,
    quiet_trainer,
    training_seed,
)
from evalkit.train.reporting import TrainingReporter, reporter_callback


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


def trainer_arguments(config: TrainConfig, loaded: TrainingModel, work_dir: Path) -> dict[str, Any]:
    """Return the ``TrainingArguments`` fields SFT and DPO share."""
    settings = config.training
    return {
        "output_dir": str(work_dir),
        "use_cpu": loaded.on_cpu,
        "bf16": loaded.bf16,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps if settings.max_steps is not None else -1,
        "warmup_steps": settings.warmup_ratio,
        "lr_scheduler_type": "linear",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "dataloader_num_workers": 0,
    }


def train_sft(
    config: TrainConfig,
    loaded: TrainingModel,
    template: PromptTemplate,
    items: Sequence[Item],
    out_dir: Path,
    reporter: TrainingReporter,
) -> TrainedAdapter:
    """Train a LoRA adapter on ``items`` and save it (adapter files only) into ``out_dir``.

    Args:
        config: the training config.
        loaded: the base model and tokenizer.
        template: the prompt template (the suite's).
        items: the training examples.
        out_dir: an empty directory the adapter is saved to.
        reporter: receives the parameter count and per-step progress with the loss.
    """
    from datasets import Dataset
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    training_seed(config)
    dataset = Dataset.from_list(sft_records(template, items, config.training_data_path))
    with tempfile.TemporaryDirectory(prefix="evalkit-sft-") as work_dir:
        arguments = SFTConfig(
            **trainer_arguments(config, loaded, Path(work_dir)),
            max_length=config.training.max_seq_length,
            completion_only_loss=True,
            packing=False,
        )
        trainer = SFTTrainer(
            model=loaded.model,
            args=arguments,
            train_dataset=dataset,
            processing_class=loaded.tokenizer,
            peft_config=lora_config(config.lora),
            callbacks=[reporter_callback(reporter, f"training {config.output_path.name} (sft)")],
        )
        quiet_trainer(trainer)
        model: Any = trainer.model
        trainable, total = parameter_counts(model)
        reporter.note(describe_parameters(trainable, total))
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        model.save_pretrained(str(out_dir))
    return TrainedAdapter(trainable, total, loss_curve(trainer.state.log_history), seconds)
