"""SFT on the tiny model: the adapter loads, changes the outputs, and carries its manifest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from training_fixtures import PROMPT, TrainedTiny
from transformers import AutoModelForCausalLM, AutoTokenizer

from evalkit.data.items import load_items
from evalkit.files.home import file_sha256
from evalkit.models.hf import render_chat
from evalkit.models.sources import model_fingerprint
from evalkit.prompting import PromptTemplate, template_hash
from evalkit.train.config import MANIFEST_NAME, read_manifest
from evalkit.train.lora import sft_records


def _logits(model: torch.nn.Module, tokenizer: object, text: str) -> torch.Tensor:
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)  # type: ignore[operator]
    with torch.no_grad():
        return model(**ids).logits  # type: ignore[no-any-return]


def test_adapter_loads_and_changes_the_outputs(trained_tiny: TrainedTiny, tiny_model_dir: Path) -> None:
    from peft import PeftModel

    adapter = trained_tiny.adapter
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    text = render_chat(tokenizer, [{"role": "user", "content": "My account has been locked"}])
    before = _logits(base, tokenizer, text)
    tuned = PeftModel.from_pretrained(base, str(adapter)).eval()
    after = _logits(tuned, tokenizer, text)
    assert (after - before).abs().max().item() > 1e-3
    with tuned.disable_adapter():
        assert torch.allclose(_logits(tuned, tokenizer, text), before, atol=1e-6)


def test_targets_attention_projections_with_the_default_lora(trained_tiny: TrainedTiny) -> None:
    config = json.loads((trained_tiny.adapter / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (config["r"], config["lora_alpha"], config["lora_dropout"], config["bias"]) == (16, 32, 0.05, "none")


def test_manifest_records_identity(trained_tiny: TrainedTiny, tiny_model_dir: Path) -> None:
    manifest = read_manifest(trained_tiny.adapter)
    assert manifest is not None and (trained_tiny.adapter / MANIFEST_NAME).is_file()
    assert manifest.kind == "adapter" and manifest.method == "sft"
    assert manifest.base_fingerprint == model_fingerprint(tiny_model_dir)
    assert manifest.data_sha256 == file_sha256(trained_tiny.config.training_data_path)
    assert manifest.data_examples == len(load_items(trained_tiny.config.training_data_path))
    assert manifest.config["resolved_prompt"]["user"] == PROMPT["user"]
    assert manifest.config["lora"]["r"] == 16 and manifest.evalkit_version
    assert [point["step"] for point in manifest.loss_curve] == [1.0, 2.0, 3.0]
    assert all(math.isfinite(point["loss"]) for point in manifest.loss_curve)
    template = PromptTemplate(PROMPT["system"], PROMPT["user"], PROMPT["expected"])
    assert manifest.prompt_hash == template_hash(template)


def test_reports_trainable_parameters_and_each_step(trained_tiny: TrainedTiny) -> None:
    notes = trained_tiny.reporter.notes
    counted = [n for n in notes if n.startswith("trainable parameters:")]
    assert counted and f"{trained_tiny.manifest.trainable_parameters:,}" in counted[0]
    assert 0 < trained_tiny.manifest.trainable_parameters < trained_tiny.manifest.total_parameters
    assert trained_tiny.reporter.steps == 3 and len(trained_tiny.reporter.losses) == 3


def test_training_prompt_is_the_evaluation_prompt(tiny_model_dir: Path, train_dir: Path) -> None:
    """The chat text evaluation sends is a prefix of every trained sequence: no drift possible."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    template = PromptTemplate(PROMPT["system"], PROMPT["user"], PROMPT["expected"])
    items = load_items(train_dir / "data" / "train.jsonl")[:5]
    for item, record in zip(items, sft_records(template, items, train_dir), strict=True):
        evaluated = render_chat(tokenizer, template.messages(item.fields))
        trained = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)
        assert trained.startswith(evaluated)
        assert trained[len(evaluated):].startswith(item.fields["output"])
