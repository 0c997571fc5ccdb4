"""Supervised fine-tuning of a LoRA adapter with trl's ``SFTTrainer``.

Each example becomes a *conversational prompt/completion* pair: the prompt is the chat
messages :class:`~evalkit.prompting.PromptTemplate` renders for evaluation, the
completion is the assistant message with the expected answer. trl applies the model's
chat template to both and masks the prompt, so the loss covers only the answer (and the
end-of-turn token that teaches the model to stop).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.data.items import Item
from evalkit.prompting import PromptTemplate
from evalkit.train.config import TrainConfig
from evalkit.train.lora import (
    TrainedAdapter,
    TrainingModel,
    fit_and_save,
    lora_config,
    quiet_libraries,
    trainer_arguments,
    training_seed,
)
from evalkit.train.reporting import TrainingReporter, reporter_callback


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
    with quiet_libraries(), tempfile.TemporaryDirectory(prefix="evalkit-sft-") as work_dir:
        arguments = SFTConfig(
            **trainer_arguments(config, loaded, Path(work_dir)),
            max_length=config.training.max_seq_length,
            completion_only_loss=True,
            packing=False,
            train_sampling_strategy="group_by_length" if config.training.group_by_length else "random",
        )
        trainer = SFTTrainer(
            model=loaded.model,
            args=arguments,
            train_dataset=dataset,
            processing_class=loaded.tokenizer,
            peft_config=lora_config(config.lora),
            callbacks=[reporter_callback(reporter, f"training {config.output_path.name} (sft)")],
        )
        return fit_and_save(trainer, out_dir, reporter)
