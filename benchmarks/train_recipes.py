"""Training recipes side by side: time and held-out exact match per variant of the demo config.

Run: .venv/bin/python benchmarks/train_recipes.py '{"name": "3-epochs", "training": {"epochs": 3}}' [...]

Each argument is one variant of ``train/classifier-lora.yaml``: ``training`` and ``lora``
keys replace the config's, ``name`` labels the variant (its adapter goes to a temporary
directory). Every variant is trained through ``train_adapter`` (the path ``evalkit
train`` takes) and scored on the 80 held-out eval items of the classifier suite.

Exact match is computed teacher-forced: each eval item's prompt plus its expected answer
and end-of-turn token go through the adapter model in one forward pass, and the item
counts when every answer token (and the end of turn) is the argmax of the position
before it. That is exactly when greedy decoding would produce the expected answer, at
the cost of one forward pass instead of ~45 decoding steps, so several recipes can be
compared in one session. ``benchmarks/bench_train.py`` measures the demo config through
the real suite run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from evalkit.data.items import load_items
from evalkit.train.candidates import base_model, train_adapter
from evalkit.train.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "train" / "classifier-lora.yaml"


def variant_config(spec: dict[str, Any], out_dir: Path) -> TrainConfig:
    """Return the demo config with the variant's ``training`` and ``lora`` keys replaced."""
    config = load_train_config(CONFIG)
    data = config.model_dump()
    data["output_dir"] = str(out_dir)
    data["training"].update(spec.get("training", {}))
    data["lora"].update(spec.get("lora", {}))
    changed = TrainConfig.model_validate(data)
    changed._source = config._source
    return changed


def scale_lora_updates(model: Any, factor: float) -> None:
    """Multiply every LoRA update of a peft model by ``factor`` (its B matrices, in place)."""
    if factor != 1.0:
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.data.mul_(factor)


@torch.inference_mode()
def teacher_forced_exact_match(config: TrainConfig, adapter_dir: Path | None, batch_size: int = 16,
                               lora_scale: float = 1.0) -> float:
    """Return the share of eval items greedy decoding would answer exactly (see the module docstring).

    ``lora_scale`` multiplies the adapter's LoRA update (its B matrices) first: 1 is the adapter as trained.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = base_model(config)
    tokenizer = AutoTokenizer.from_pretrained(str(base.path))
    model: Any = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        scale_lora_updates(model, lora_scale)
    return teacher_forced_exact_match_of(model.eval(), tokenizer, config, batch_size)


@torch.inference_mode()
def teacher_forced_exact_match_of(model: Any, tokenizer: Any, config: TrainConfig, batch_size: int = 16) -> float:
    """Return the share of eval items greedy decoding would answer exactly, for a loaded model."""
    suite = config.load_suite()
    template = config.prompt_template(suite)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    sequences: list[tuple[list[int], list[int]]] = []
    for item in load_items(suite.resolve(suite.dataset.path)):
        messages = template.messages(item.fields)
        answer = template.expected_output(item.fields)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids, "the answer does not extend the generation prompt"
        target = full_ids[len(prompt_ids) :]
        sequences.append((prompt_ids, target[: target.index(end_of_turn) + 1]))
    exact = 0
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        width = max(len(p) + len(t) for p, t in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id or 0)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (prompt_ids, target) in enumerate(batch):
            ids[row, : len(prompt_ids) + len(target)] = torch.tensor(prompt_ids + target)
            mask[row, : len(prompt_ids) + len(target)] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits
        for row, (prompt_ids, target) in enumerate(batch):
            predicted = logits[row, len(prompt_ids) - 1 : len(prompt_ids) + len(target) - 1].argmax(-1).tolist()
            exact += predicted == target
    return exact / len(sequences)


def main() -> None:
    """Train and score every variant given on the command line; print one JSON line each."""
    specs = [json.loads(arg) for arg in sys.argv[1:]] or [{"name": "demo config"}]
    for spec in specs:
        with tempfile.TemporaryDirectory(prefix="train-recipe-") as tmp:
            config = variant_config(spec, Path(tmp) / "adapter")
            started = time.perf_counter()
            manifest = train_adapter(config, force=True)
            wall = time.perf_counter() - started
            exact = teacher_forced_exact_match(config, config.output_path)
        losses = [point["loss"] for point in manifest.loss_curve]
        print(json.dumps({
            "name": spec.get("name", "variant"), "updates": len(losses), "train_loop_s": manifest.seconds,
            "s_per_update": round(manifest.seconds / max(len(losses), 1), 2), "wall_s": round(wall, 1),
            "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)] if losses else [],
            "exact_match": exact, "spec": spec,
        }), flush=True)


if __name__ == "__main__":
    main()
