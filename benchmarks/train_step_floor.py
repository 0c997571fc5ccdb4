"""The CPU's floor for one LoRA training step of the demo adapter, without trl.

Run: .venv/bin/python benchmarks/train_step_floor.py [--batch-size 8] [--tokens 130] [--steps 4]

A plain PyTorch loop (forward with labels, backward, AdamW step) over a fixed batch of
random tokens, the completion-only loss masked like SFT's, on the embedded
SmolLM2-135M-Instruct with the demo's LoRA (r=16, alpha 32 on q/k/v/o), float32. No
trainer, logging, data collation or padding: what a training step of that shape costs on
this machine at least. BENCHMARKS.md "Training" compares it with the trl step.
"""

from __future__ import annotations

import argparse
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from evalkit.models.sources import DEFAULT_MODEL, resolve_model


def main() -> None:
    """Time a few plain training steps and print forward and backward+step seconds each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=130, help="sequence length (the demo's padded batches)")
    parser.add_argument("--prompt-tokens", type=int, default=85, help="masked out of the loss")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (the demo: 0.05)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(resolve_model(DEFAULT_MODEL).path), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=args.dropout, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(0, model.config.vocab_size, (args.batch_size, args.tokens))
    labels = ids.clone()
    labels[:, : args.prompt_tokens] = -100
    print(f"{torch.get_num_threads()} threads, batch {args.batch_size} x {args.tokens} tokens")
    totals = []
    for step in range(args.steps):
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        forward = time.perf_counter() - started
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        total = time.perf_counter() - started
        totals.append(total)
        print(f"step {step + 1}: forward {forward:.2f} s, backward + step {total - forward:.2f} s, total {total:.2f} s")
    print(f"median step {sorted(totals)[len(totals) // 2]:.2f} s")


if __name__ == "__main__":
    main()
