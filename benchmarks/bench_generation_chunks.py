"""Task generation on the vLLM engine: how the chunk size (``generation.batch_size``) sets its speed.

Run: .venv/bin/python benchmarks/bench_generation_chunks.py [--sizes 16,40,80] [--items 80]
         [--max-new-tokens 64] [--json OUT.json]

The runner sends a candidate's items to its backend one chunk of ``generation.batch_size``
items at a time and stores each chunk before the next starts. On a CPU, a decode step of
a 135M model costs about the same for 16 sequences as for 80 (reading the weights and the
engine's per-step work dominate), so the number of chunks sets the number of decode steps.
This times the demo's classifier prompts (the embedded model, float32, greedy, the
``base`` and the shipped ``lora`` adapter through one engine) at each chunk size, side
by side in one process, and checks the completions are the same whatever the size.
Engine start-up and adapter loading are excluded; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from evalkit.models.backend import ModelVariant
from evalkit.models.sources import resolve_model
from evalkit.models.vllm import VLLMBackend
from evalkit.prompting import prompt_for_candidate
from evalkit.record.run_facts import cpu_description
from evalkit.runner import load_inputs
from evalkit.suite.config import GenerationConfig, load_suite

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="16,40,80")
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--json")
    args = parser.parse_args()
    print(f"cpu: {cpu_description()}", flush=True)
    suite = load_suite(REPO / "suites" / "classifier.yaml")
    inputs = load_inputs(suite)
    template = prompt_for_candidate(suite, suite.candidates[0], inputs.train_items, inputs.items)
    conversations = [template.messages(item.fields) for item in inputs.items[: args.items]]
    model = resolve_model(suite.candidates[0].model)
    base = ModelVariant(model, dtype="float32")
    lora = ModelVariant(model, REPO / "train" / "classifier-lora", "lora", dtype="float32")
    engine = VLLMBackend()
    engine.prepare([base, lora])
    warm = GenerationConfig(max_new_tokens=4, batch_size=1)
    started = time.perf_counter()
    engine.generate(base, conversations[:1], warm)
    engine.generate(lora, conversations[:1], warm)
    print(f"engine start and adapter load: {time.perf_counter() - started:.1f} s", flush=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    outputs: dict[tuple[str, int], list[str]] = {}
    for label, variant in (("base", base), ("lora", lora)):
        for size in sizes:
            settings = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=size)
            started = time.perf_counter()
            texts: list[str] = []
            for start in range(0, len(conversations), size):
                texts += engine.generate(variant, conversations[start : start + size], settings)
            seconds = time.perf_counter() - started
            outputs[(label, size)] = texts
            same = sum(a == b for a, b in zip(texts, outputs[(label, sizes[0])], strict=True))
            row = {"candidate": label, "chunk": size, "items": len(texts), "seconds": round(seconds, 2),
                   "items_per_s": round(len(texts) / seconds, 2), f"same_as_chunk_{sizes[0]}": same}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for label in ("base", "lora"):
        first = next(r for r in rows if r["candidate"] == label and r["chunk"] == sizes[0])
        for row in rows:
            if row["candidate"] == label and row["chunk"] != sizes[0]:
                print(f"{label}: chunk {row['chunk']} is {first['seconds'] / row['seconds']:.2f}x "
                      f"as fast as chunk {sizes[0]}", flush=True)
    engine.close()
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
