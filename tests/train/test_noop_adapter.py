"""`training.max_steps: 0`: the adapter saved untrained, a no-op (the gate's negative control)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_fixtures import write_train_config

from evalkit.train.candidates import train_adapter
from evalkit.train.config import load_train_config
from evalkit.train.lora import SilentReporter


def test_zero_steps_saves_an_adapter_that_changes_nothing(train_dir: Path, tiny_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    path = write_train_config(train_dir, tiny_model_dir,
                              training={"max_steps": 0, "batch_size": 4, "learning_rate": 0.5,
                                        "max_seq_length": 512})
    config = load_train_config(path)
    manifest = train_adapter(config, SilentReporter())
    assert manifest.loss_curve == []  # not one update
    assert manifest.config["training"]["max_steps"] == 0
    weights = load_file(str(config.output_path / "adapter_model.safetensors"))
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    lora_a = [tensor for name, tensor in weights.items() if "lora_A" in name]
    assert lora_b and all(torch.count_nonzero(tensor) == 0 for tensor in lora_b)
    assert any(torch.count_nonzero(tensor) > 0 for tensor in lora_a)  # a real, initialised adapter

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    with torch.inference_mode():
        expected = base(input_ids=ids).logits.clone()
        adapted = PeftModel.from_pretrained(base, str(config.output_path)).eval()
        assert torch.equal(adapted(input_ids=ids).logits, expected)


def test_negative_max_steps_is_refused(train_dir: Path, tiny_model_dir: Path) -> None:
    from evalkit.errors import ConfigError

    path = write_train_config(train_dir, tiny_model_dir, training={"max_steps": -1})
    with pytest.raises(ConfigError, match="max_steps"):
        load_train_config(path)
