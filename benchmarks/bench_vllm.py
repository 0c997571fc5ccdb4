"""vLLM speed: many LoRA adapters through one engine, and vLLM vs HF items/s, side by side.

Run: .venv/bin/python benchmarks/bench_vllm.py [--items 48] [--max-new-tokens 48]
         [--mmlu-per-subject 2] [--json OUT.json]

All on the embedded SmolLM2-135M-Instruct, float32, greedy, in one process:

1. Multi-LoRA: the base plus three LoRA adapters (r=16 on q/k/v/o, small random B so each
   changes some outputs) on ``--items`` classifier prompts. vLLM: the base alone, then
   base + 3 adapters in ONE ``generate_many`` call (one engine, one batch). HF: the base
   alone, then base and each adapter one after the other (the HF backend's way). Target:
   vLLM's base+3 time at most 1.5x its base-alone time.
2. Classifier suite items/s: suites/classifier.yaml's prompts on data/classifier/eval.jsonl
   (first ``--items``), the base model, HF backend vs vLLM backend.
3. mmlu_mini items/s (the benchmarks area's task, ``--mmlu-per-subject`` questions per
   subject): evalkit's lm-eval models ``evalkit-hf`` vs ``evalkit-vllm``, with accuracy
   and per-item agreement.

Engine start-up (~10 s) is excluded from the timed sections and printed separately.
Both backends run in one process, one after the other; on a shared machine compare the
ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model
from evalkit.models.vllm import VLLMBackend
from evalkit.runner import load_inputs
from evalkit.suite.config import GenerationConfig, load_suite

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"


def make_adapters(model_dir: Path, root: Path, count: int) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for n in range(count):
        torch.manual_seed(n)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32,
                                                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02)
        out = root / f"adapter{n}"
        peft_model.save_pretrained(str(out))
        paths.append(out)
    return paths


def timed(fn: Any, label: str = "") -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    if label:
        print(f"[bench_vllm] {label}: {seconds:.1f} s", flush=True)
    return value, seconds


def classifier_conversations(limit: int) -> list[list[dict[str, str]]]:
    from evalkit.prompting import prompt_for_candidate

    suite = load_suite(REPO / "suites" / "classifier.yaml")
    inputs = load_inputs(suite)
    template = prompt_for_candidate(suite, suite.candidates[0], inputs.train_items, inputs.items)
    return [template.messages(item.fields) for item in inputs.items[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--mmlu-per-subject", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    settings = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=16)
    model = resolve_model(MODEL)
    conversations = classifier_conversations(args.items)
    results: dict[str, Any] = {"items": len(conversations), "max_new_tokens": args.max_new_tokens}
    root = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    adapters = make_adapters(model.path, root, 3)
    base = ModelVariant(model, dtype="float32")
    variants = [ModelVariant(model, path, path.name, dtype="float32") for path in adapters]

    vllm = VLLMBackend()
    vllm.prepare(variants)
    _, startup = timed(lambda: vllm.generate(base, conversations[:2], settings), "vllm startup")
    for variant in variants:  # load each adapter once, outside the timed sections
        vllm.generate(variant, conversations[:1], settings)
    base_out, vllm_base = timed(lambda: vllm.generate(base, conversations, settings), "vllm base")
    many, vllm_many = timed(lambda: vllm.generate_many([(base, conversations)] +
                                                       [(v, conversations) for v in variants], settings), "vllm base+3")
    changed = [sum(a != b for a, b in zip(out, base_out, strict=True)) for out in many[1:]]

    hf = HFBackend()
    hf.generate(base, conversations[:2], settings)
    for variant in variants:
        hf.generate(variant, conversations[:1], settings)
    hf_base_out, hf_base = timed(lambda: hf.generate(base, conversations, settings), "hf base")
    _, hf_seq = timed(lambda: [hf.generate(v, conversations, settings) for v in [base, *variants]], "hf base+3")
    agreement = sum(a == b for a, b in zip(hf_base_out, base_out, strict=True)) / len(base_out)
    results["multi_lora"] = {
        "vllm_startup_s": startup, "vllm_base_s": vllm_base, "vllm_base_plus_3_s": vllm_many,
        "vllm_ratio": vllm_many / vllm_base, "hf_base_s": hf_base, "hf_base_plus_3_sequential_s": hf_seq,
        "hf_ratio": hf_seq / hf_base, "adapter_changed_items": changed,
    }
    results["classifier"] = {
        "hf_items_per_s": len(conversations) / hf_base, "vllm_items_per_s": len(conversations) / vllm_base,
        "speedup": hf_base / vllm_base, "hf_vllm_agreement": agreement,
    }
    print(json.dumps(results, indent=2), flush=True)

    try:
        from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
        from evalkit.benchmarks.lm import EvalkitLM, EvalkitVLLM
        from evalkit.benchmarks.spec import BenchmarkSpec
    except ImportError as exc:
        results["mmlu_mini"] = f"not run: {exc}"
    else:
        task = prepare_benchmark(BenchmarkSpec(task="mmlu_mini", limit_per_subject=args.mmlu_per_subject), REPO)
        on_vllm, vllm_s = timed(lambda: evaluate_benchmark(task, EvalkitVLLM(vllm, base)), "mmlu vllm")
        on_hf, hf_s = timed(lambda: evaluate_benchmark(task, EvalkitLM(hf, base)), "mmlu hf")
        n = len(on_hf.items)
        same = sum(on_hf.items[k] == on_vllm.items.get(k) for k in on_hf.items) / n
        results["mmlu_mini"] = {
            "n": n, "hf_items_per_s": n / hf_s, "vllm_items_per_s": n / vllm_s, "speedup": hf_s / vllm_s,
            "hf_acc": on_hf.acc, "vllm_acc": on_vllm.acc, "per_item_agreement": same,
        }
    vllm.close()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
