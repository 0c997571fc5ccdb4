"""MMLU speed: evalkit's benchmark path against lm-eval's default `hf` model, side by side.

Run: .venv/bin/python benchmarks/bench_mmlu.py [--per-subject 10] [--batch-size 16]
         [--sharing-per-subject 3] [--skip-sharing] [--json OUT.json]

On the same items (``--per-subject`` questions from each of the 57 subjects, letter
formulation, zero-shot) and the same model (the embedded SmolLM2-135M-Instruct):

1. lm-eval's default ``hf`` model (``HFLM``, float32, batch ``--batch-size``) through
   ``simple_evaluate``;
2. evalkit's path: ``EvalkitLM`` on an ``HFBackend`` (bf16 where the CPU has it natively,
   else float32; vocabulary logits only at scored positions; shared contexts packed;
   length-sorted batches) through the same ``simple_evaluate``;

and prints the time ratio, both accuracies and the per-item agreement. Then the
compute floor: the workload's FLOPs (one pass over each question's tokens, the
vocabulary projection at the scored position) over the matmul rate measured here in
float32 and bf16. Then the sharing check: the benchmarks stage for three candidates on
one base (base + two LoRA adapters) against the stage for the base alone, model loads
included, on ``--sharing-per-subject`` questions per subject.

Both paths run in one process, one after the other, so machine load affects both; on a
shared machine run it twice and compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from evalkit.benchmarks.evaluate import BenchmarkOutcome, evaluate_benchmark, prepare_benchmark, quiet_lm_eval
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.benchmarks.stage import run_benchmarks
from evalkit.models.backend import Backend, ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import adapter_fingerprint, resolve_model
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateIdentity, CandidateResult, RunResult
from evalkit.record.run_facts import cpu_has_native_bf16
from evalkit.runner import load_inputs
from evalkit.suite.config import load_suite

MODEL = "smollm2-135m-instruct"


def matmul_rate(dtype: torch.dtype, size: int = 1024, seconds: float = 2.0) -> float:
    """Return GFLOP/s of square matmuls in ``dtype`` on this machine (threads as configured)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - started) / 1e9


def workload_flops(lm: EvalkitLM, spec: BenchmarkSpec) -> tuple[float, int]:
    """Return (FLOPs, tokens) of the letter workload: one pass per question, head at one position."""
    from evalkit.benchmarks.evaluate import question_prompt, render_prefix
    from evalkit.benchmarks.mmlu_data import load_mmlu, select_items

    model = lm.backend.load(lm.variant).model
    config = model.config
    embedding = config.vocab_size * config.hidden_size
    body = sum(p.numel() for p in model.parameters()) - embedding  # tied head: counted once below
    flops, tokens = 0.0, 0
    for question in select_items(load_mmlu(), spec.subjects, spec.per_subject_limit):
        text = render_prefix(question, [], "letter") + question_prompt(question, "letter")
        length = len(lm.tok_encode(text))
        tokens += length
        attention = 2 * 2 * length * length * config.hidden_size * config.num_hidden_layers / 2  # causal half
        flops += 2 * body * length + attention + 2 * embedding  # head at the scored position only
    return flops, tokens


def agreement(a: BenchmarkOutcome, b: BenchmarkOutcome) -> float:
    """Return the share of items both paths answered the same way (correct or not)."""
    return sum(a.items[k] == b.items[k] for k in a.items) / len(a.items)


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """Save a random LoRA adapter (q/k/v/o, r=16) for SmolLM2."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def stage_seconds(folder: Path, candidates: list[dict[str, Any]], per_subject: int, batch_size: int) -> float:
    """Time the benchmarks stage (fresh backend, loads included) for some candidates."""
    suite_file = folder / f"suite-{len(candidates)}.yaml"
    (folder / "eval.jsonl").write_text('{"input": "x", "output": "y"}\n')
    suite_file.write_text(yaml.safe_dump({
        "name": "bench", "dataset": {"path": "eval.jsonl"}, "candidates": candidates,
        "benchmarks": [{"task": "mmlu_mini", "limit_per_subject": per_subject, "batch_size": batch_size}],
    }))
    suite = load_suite(suite_file)
    model = resolve_model(MODEL)
    results = []
    for entry in candidates:
        adapter = entry.get("adapter")
        identity = CandidateIdentity(MODEL, model.fingerprint, adapter,
                                     adapter_fingerprint(Path(adapter)) if adapter else None, "hf", "")
        results.append(CandidateResult(entry["name"], identity=identity))
    run = RunResult("bench", "bench", str(suite_file), candidates[0]["name"], results, "now")
    backends: dict[str, Backend] = {}
    started = time.perf_counter()
    run_benchmarks(load_inputs(suite), run, backends, SilentProgress())
    seconds = time.perf_counter() - started
    for backend in backends.values():
        backend.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-subject", type=int, default=10, help="questions per subject (default 10: 570)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size of both paths (default 16)")
    parser.add_argument("--sharing-per-subject", type=int, default=3,
                        help="questions per subject for the 3-candidates-vs-1 check (default 3)")
    parser.add_argument("--skip-sharing", action="store_true", help="skip the 3-candidates-vs-1 check")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    from lm_eval.models.huggingface import HFLM

    figures: dict[str, Any] = {"threads": torch.get_num_threads(), "native_bf16": cpu_has_native_bf16()}
    figures["gflops_fp32"] = matmul_rate(torch.float32)
    figures["gflops_bf16"] = matmul_rate(torch.bfloat16)
    print(f"matmul rate: fp32 {figures['gflops_fp32']:.0f} GFLOP/s, bf16 {figures['gflops_bf16']:.0f} GFLOP/s "
          f"(native bf16: {figures['native_bf16']}, {figures['threads']} threads)")

    spec = BenchmarkSpec(task="mmlu_mini", limit_per_subject=args.per_subject, batch_size=args.batch_size)
    task = prepare_benchmark(spec, Path.cwd())
    model = resolve_model(MODEL)
    backend = HFBackend(device=torch.device("cpu"))
    dtype = scoring_dtype("auto", backend.device)
    ours_lm = EvalkitLM(backend, ModelVariant(model, dtype=dtype), batch_size=args.batch_size)
    with quiet_lm_eval():
        reference_lm = HFLM(pretrained=str(model.path), dtype="float32", batch_size=args.batch_size, device="cpu")

    reference = evaluate_benchmark(task, reference_lm)
    print(f"lm-eval hf (fp32): {reference.seconds:7.1f} s  acc {reference.acc:.4f}  ({len(reference.items)} items)")
    ours = evaluate_benchmark(task, ours_lm)
    print(f"evalkit ({dtype}): {ours.seconds:7.1f} s  acc {ours.acc:.4f}")
    figures.update(
        items=len(ours.items), dtype=dtype, reference_seconds=reference.seconds, evalkit_seconds=ours.seconds,
        speedup=reference.seconds / ours.seconds, reference_acc=reference.acc, evalkit_acc=ours.acc,
        agreement=agreement(ours, reference),
    )
    print(f"speedup {figures['speedup']:.2f}x, accuracy difference "
          f"{(ours.acc - reference.acc) * 100:+.2f}pt, per-item agreement {figures['agreement'] * 100:.1f}%")

    flops, tokens = workload_flops(ours_lm, spec)
    figures.update(workload_tflop=flops / 1e12, workload_tokens=tokens,
                   floor_fp32_seconds=flops / (figures["gflops_fp32"] * 1e9),
                   floor_bf16_seconds=flops / (figures["gflops_bf16"] * 1e9))
    print(f"compute floor: {flops / 1e12:.1f} TFLOP over {tokens} tokens -> "
          f"{figures['floor_fp32_seconds']:.1f} s fp32, {figures['floor_bf16_seconds']:.1f} s bf16; "
          f"lm-eval hf at {reference.seconds / figures['floor_fp32_seconds']:.2f}x the fp32 floor, evalkit at "
          f"{ours.seconds / figures['floor_' + ('bf16' if dtype == 'bfloat16' else 'fp32') + '_seconds']:.2f}x "
          f"its {dtype} floor")
    backend.close()
    del reference_lm

    if not args.skip_sharing:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            adapters = [str(make_adapter(model.path, folder / f"lora{i}", seed=i)) for i in (1, 2)]
            one = stage_seconds(folder, [{"name": "base", "model": MODEL}], args.sharing_per_subject, args.batch_size)
            three = stage_seconds(folder, [
                {"name": "base", "model": MODEL},
                {"name": "lora1", "model": MODEL, "adapter": adapters[0]},
                {"name": "lora2", "model": MODEL, "adapter": adapters[1]},
            ], args.sharing_per_subject, args.batch_size)
        figures.update(stage_one_seconds=one, stage_three_seconds=three, sharing_ratio=three / one)
        print(f"stage, {57 * args.sharing_per_subject} items: 1 candidate {one:.1f} s, "
              f"3 candidates on one base {three:.1f} s -> {three / one:.2f}x (target <= 3.2x)")

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
