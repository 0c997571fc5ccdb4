"""Direct preference optimisation of a LoRA adapter with trl's ``DPOTrainer``.

The preference file is JSONL with ``prompt``, ``chosen`` and ``rejected`` on every line
(trl's format). ``prompt`` is either a list of chat messages (the shipped classifier set
holds the messages the suite's template renders, so the prompts match evaluation) or a
string, taken as one user message. ``chosen``/``rejected`` are the answers as strings (or
a one-message assistant list). The model is the base with a fresh LoRA adapter; the
reference is the same model with the adapter disabled, i.e. the frozen base, so no
second copy of the weights is held.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.data.items import Item
from evalkit.errors import DataError
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
        trainer = DPOTrainer(
            model=loaded.model,
            ref_model=None,  # with a peft model, the reference is the adapter disabled
            args=arguments,
            train_dataset=dataset,
            processing_class=loaded.tokenizer,
            peft_config=lora_config(config.lora),
            callbacks=[reporter_callback(reporter, f"training {config.output_path.name} (dpo)")],
        )
        return fit_and_save(trainer, out_dir, reporter)
