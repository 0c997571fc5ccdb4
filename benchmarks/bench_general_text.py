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

from probe_bench import genre_figures, paired_with_base, print_figures, probe_setup, score_candidates, write_results

from evalkit.benchmarks.evaluate import BenchmarkOutcome, evaluate_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.comparison.paired import compare_metric, rng_for
from evalkit.models.backend import ModelVariant


def summarise(label: str, outcome: BenchmarkOutcome, seconds: float) -> dict[str, Any]:
    """Return (and print) one candidate's figures on the probe."""
    return genre_figures(label, outcome, seconds, "documents", "mean_bits_per_byte")


def main() -> int:
    """Score the probe on the base (and an adapter); print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vllm", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    task, backend, dtype, model = probe_setup(BenchmarkSpec(task="evalkit_general_text"), args.dtype)
    results, outcomes = score_candidates(
        task, backend, model, dtype, args.adapter,
        lambda variant: EvalkitLM(backend, variant, batch_size=args.batch_size),
        lambda run: summarise(run.label, run.outcome, run.seconds))
    for name, ids, base_values, values in paired_with_base(outcomes):
        compared = compare_metric("general_text", ids, base_values, values, "3%", rng_for(0, "base", name, "gt"),
                                  kind="continuous", higher_is_better=False)
        results.append(print_figures({
            "candidate": name, "relative_change": round(compared.relative_delta or 0.0, 4),
            "ci_relative": [round(compared.ci_low / compared.baseline_value, 4),
                            round(compared.ci_high / compared.baseline_value, 4)],
            "p_value": compared.p_value, "verdict": compared.verdict, "explain": compared.explain(),
        }))
    if args.vllm:
        from evalkit.benchmarks.lm import EvalkitVLLM
        from evalkit.models.vllm import VLLMBackend

        base = outcomes["base"]
        engine = VLLMBackend()
        variant = ModelVariant(model, dtype="float32")
        lm = EvalkitVLLM(engine, variant)
        started = time.perf_counter()
        outcome = evaluate_benchmark(task, lm)
        results.append(summarise("base (vllm, float32)", outcome, time.perf_counter() - started))
        worst = max(abs(outcome.items[i] - base.items[i]) for i in sorted(base.items))
        print(json.dumps({"vllm_vs_hf_max_abs_bits_per_byte": worst}), flush=True)
        engine.close()
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
