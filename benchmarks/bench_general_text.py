"""The evalkit_general_text probe on the embedded model: its figures, its cost, and an adapter against it.

Run: .venv/bin/python benchmarks/bench_general_text.py [--adapter train/classifier-lora]
         [--dtype auto] [--batch-size 8] [--vllm] [--json OUT.json]

Scores the bundled corpus (``evalkit/benchmarks/general_text/corpus.jsonl``) with the
embedded SmolLM2-135M-Instruct through lm-eval's own task machinery (``simple_evaluate``,
``loglikelihood_rolling``) on evalkit's ``EvalkitLM``, and prints lm-eval's corpus-level
``word_perplexity``, ``byte_perplexity`` and ``bits_per_byte``, the mean of the
per-document bits per byte (what the comparison pairs), per-genre means, and the
seconds one candidate's pass costs (model load excluded). With ``--adapter`` it also
scores the adapter on the same backend and prints the paired comparison under a 3%
threshold, lower is better (evalkit's own ``compare_metric``). With ``--vllm`` the base is
also scored on evalkit's vLLM backend and the largest per-document difference is printed.
The CPU model and its speed flags are printed first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalkit.benchmarks.evaluate import BenchmarkOutcome, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.comparison.paired import compare_metric
from evalkit.comparison.stats import rng_for
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model
from evalkit.record.environment import cpu_description

REPO = Path(__file__).resolve().parents[1]


def summarise(name: str, outcome: BenchmarkOutcome, seconds: float) -> dict[str, Any]:
    """Return (and print) one candidate's figures on the probe."""
    figures = {
        "candidate": name,
        "documents": len(outcome.items),
        "mean_bits_per_byte": round(outcome.acc, 4),
        **{f"lm_eval_{k}": round(v, 4) for k, v in outcome.lm_eval_scores.items()},
        "genres": {genre: round(score.acc, 4) for genre, score in outcome.subjects.items()},
        "seconds": round(seconds, 1),
    }
    print(json.dumps(figures), flush=True)
    return figures


def main() -> int:
    """Score the probe on the base (and an adapter); print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vllm", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"cpu: {cpu_description()}; torch threads {torch.get_num_threads()}", flush=True)
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_general_text"), REPO)
    backend = HFBackend(device=torch.device("cpu"))
    dtype = scoring_dtype(args.dtype, backend.device)
    model = resolve_model("smollm2-135m-instruct")
    results: list[dict[str, Any]] = []
    outcomes: dict[str, BenchmarkOutcome] = {}
    for adapter in [None, *args.adapter]:
        name = adapter.name if adapter else "base"
        variant = ModelVariant(model, adapter=adapter, adapter_name=name if adapter else None, dtype=dtype)
        backend.load(variant)  # the load is not the probe's cost
        started = time.perf_counter()
        outcome = evaluate_benchmark(task, EvalkitLM(backend, variant, batch_size=args.batch_size))
        outcomes[name] = outcome
        results.append(summarise(f"{name} (hf, {dtype})", outcome, time.perf_counter() - started))
    base = outcomes["base"]
    ids = sorted(base.items)
    for name, outcome in outcomes.items():
        if name == "base":
            continue
        compared = compare_metric("general_text", ids, np.array([base.items[i] for i in ids]),
                                  np.array([outcome.items[i] for i in ids]), "3%", rng_for(0, "base", name, "gt"),
                                  kind="continuous", higher_is_better=False)
        line = {"candidate": name, "relative_change": round(compared.relative_delta or 0.0, 4),
                "ci_relative": [round(compared.ci_low / compared.baseline_value, 4),
                                round(compared.ci_high / compared.baseline_value, 4)],
                "p_value": compared.p_value, "verdict": compared.verdict, "explain": compared.explain()}
        print(json.dumps(line), flush=True)
        results.append(line)
    if args.vllm:
        from evalkit.benchmarks.lm import EvalkitVLLM
        from evalkit.models.vllm import VLLMBackend

        engine = VLLMBackend()
        variant = ModelVariant(model, dtype="float32")
        lm = EvalkitVLLM(engine, variant)
        started = time.perf_counter()
        outcome = evaluate_benchmark(task, lm)
        results.append(summarise("base (vllm, float32)", outcome, time.perf_counter() - started))
        worst = max(abs(outcome.items[i] - base.items[i]) for i in ids)
        print(json.dumps({"vllm_vs_hf_max_abs_bits_per_byte": worst}), flush=True)
        engine.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
