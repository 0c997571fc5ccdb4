"""General capability outside evalkit: NLL per byte of human-written prose, base vs adapters, paired.

Run: .venv/bin/python benchmarks/general_nll.py ADAPTER [ADAPTER ...] [--em] [--scale S ...]

A quick, standalone check (plain transformers + peft, no evalkit probe) used to steer the
training recipes of the controls and the remedy while the ``evalkit_general_text`` probe
was being built. The text is the Python language reference that ships with CPython
itself (``pydoc_data.topics``: prose written by people, not generated, and nothing like
the customer-support messages the adapters are trained on): the first prose paragraphs
of each topic (code blocks and headings left out), up to ``--chars`` characters per
document, ``--docs`` documents in topic order.

For every document the model's summed negative log-likelihood of its tokens (each token
given the ones before it) is divided by the document's UTF-8 bytes. An adapter's change
is the ratio of its total NLL to the base's over the same documents, minus one (a
relative change of NLL per byte, the same for bits or nats); its 95% interval comes from
a paired bootstrap over the documents (2,000 resamples, seed 0). ``--em`` adds the
teacher-forced exact match on the classifier's 80 eval items
(``benchmarks/train_recipes.py``: exactly when greedy decoding returns the expected
answer). ``--scale`` also scores each adapter with its LoRA update multiplied by S
(weight interpolation between base and adapter), which needs no training.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]


def general_documents(count: int = 48, max_chars: int = 900) -> list[str]:
    """Return ``count`` prose documents from CPython's own language reference, in topic order."""
    import pydoc_data.topics as topics

    documents = []
    for name in sorted(topics.topics):
        paragraphs = []
        for block in re.split(r"\n\s*\n", topics.topics[name]):
            lines = block.splitlines()
            # Prose only: no indented code or grammar blocks, no underlined headings, no tables.
            if not lines or lines[0].startswith((" ", "\t")) or any(set(line) <= set("*=-+| ") for line in lines):
                continue
            paragraphs.append(" ".join(line.strip() for line in lines))
        text = ""
        for paragraph in paragraphs:
            if len(text) + len(paragraph) > max_chars and text:
                break
            text = f"{text}\n\n{paragraph}" if text else paragraph
        if len(text) >= 300:
            documents.append(text)
        if len(documents) == count:
            break
    return documents


@torch.inference_mode()
def nll_per_document(model: Any, tokenizer: Any, documents: list[str]) -> list[float]:
    """Return each document's summed token NLL (nats), every token given the ones before it."""
    totals = []
    for text in documents:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        logits = model(input_ids=ids).logits[0, :-1].float()
        totals.append(float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum")))
    return totals


def paired_change(base: list[float], other: list[float], resamples: int = 2000) -> tuple[float, float, float]:
    """Return the relative change of total NLL (other vs base) and its paired bootstrap 95% interval."""
    rng = random.Random(0)
    n = len(base)
    point = sum(other) / sum(base) - 1
    draws = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        draws.append(sum(other[i] for i in picks) / sum(base[i] for i in picks) - 1)
    draws.sort()
    return point, draws[int(0.025 * resamples)], draws[int(0.975 * resamples) - 1]


def main() -> None:
    """Score the base and every adapter given; print one JSON line each."""
    from peft import PeftModel
    from train_recipes import scale_lora_updates, teacher_forced_exact_match  # this script's folder is on sys.path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit.record.run_facts import cpu_flags, cpu_model
    from evalkit.train.candidates import base_model
    from evalkit.train.config import load_train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="*", type=Path)
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--chars", type=int, default=900)
    parser.add_argument("--em", action="store_true", help="also teacher-forced exact match on the eval items")
    parser.add_argument("--scale", type=float, nargs="*", default=[], help="also score LoRA updates scaled by S")
    args = parser.parse_args()

    config = load_train_config(REPO / "train" / "classifier-lora.yaml")
    base_dir = base_model(config).path
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    documents = general_documents(args.docs, args.chars)
    print(json.dumps({"cpu": cpu_model(), "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))),
                      "machine": platform.machine(), "threads": torch.get_num_threads(), "documents": len(documents),
                      "bytes": sum(len(d.encode()) for d in documents)}), flush=True)
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    started = time.perf_counter()
    base = nll_per_document(model, tokenizer, documents)
    total_bytes = sum(len(d.encode()) for d in documents)
    print(json.dumps({"name": "base", "nll_per_byte": round(sum(base) / total_bytes, 4),
                      "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    for adapter in args.adapters:
        for factor in [1.0, *args.scale]:
            peft_model: Any = PeftModel.from_pretrained(model, str(adapter)).eval()
            scale_lora_updates(peft_model, factor)
            scores = nll_per_document(peft_model, tokenizer, documents)
            change, low, high = paired_change(base, scores)
            row: dict[str, Any] = {"name": str(adapter), "scale": factor,
                                   "nll_per_byte": round(sum(scores) / total_bytes, 4),
                                   "change_pct": round(100 * change, 2),
                                   "ci95_pct": [round(100 * low, 2), round(100 * high, 2)]}
            model = peft_model.unload()  # the base again, adapter layers removed
            if args.em:
                row["exact_match_tf"] = teacher_forced_exact_match(config, adapter, lora_scale=factor)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
