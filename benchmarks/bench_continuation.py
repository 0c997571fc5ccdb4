"""The evalkit_continuation probe on the embedded model: its accuracy, its cost, and adapters against it.

Run: .venv/bin/python benchmarks/bench_continuation.py [--limit 90]
         [--adapter train/classifier-lora-forgetful ...] [--dtype auto] [--batch-size 16] [--json OUT.json]

Scores the first ``--limit`` bundled items (``evalkit/benchmarks/continuation/items.jsonl``,
genres interleaved; all 240 with ``--limit 0``) with the embedded SmolLM2-135M-Instruct
through lm-eval's own ``multiple_choice`` machinery on evalkit's ``EvalkitLM``, and prints
``acc_norm`` (the paired per-item value), lm-eval's ``acc``, per-genre accuracy and the
seconds one candidate's pass costs (model load excluded). Each ``--adapter`` is scored on
the same backend and compared paired with the base under a 3% threshold, as a suite's bar
compares it (evalkit's own ``compare_metric``: McNemar's test, Tango's interval), with the
smallest drop the items detect. The CPU model and its speed flags are printed first.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probe_bench import genre_figures, paired_with_base, print_figures, probe_setup, score_candidates, write_results

from evalkit.benchmarks.evaluate import BenchmarkOutcome
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.comparison.paired import compare_metric, detectable_drop, rng_for


def summarise(label: str, outcome: BenchmarkOutcome, seconds: float) -> dict[str, Any]:
    """Return (and print) one candidate's figures on the probe."""
    return genre_figures(label, outcome, seconds, "items", "acc_norm")


def main() -> int:
    """Score the probe on the base (and adapters); print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=90, help="the first N items (0: all 240)")
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    task, backend, dtype, model = probe_setup(
        BenchmarkSpec(task="evalkit_continuation", limit=args.limit or None), args.dtype)
    results, outcomes = score_candidates(
        task, backend, model, dtype, args.adapter,
        lambda variant: EvalkitLM(backend, variant, batch_size=args.batch_size),
        lambda run: summarise(run.label, run.outcome, run.seconds))
    for name, ids, base_values, values in paired_with_base(outcomes):
        compared = compare_metric("continuation", ids, base_values, values, "3%",
                                  rng_for(0, "base", name, "cont"), kind="binary")
        results.append(print_figures({
            "candidate": name, "delta": round(compared.delta, 4),
            "ci": [round(compared.ci_low, 4), round(compared.ci_high, 4)],
            "p_value": compared.p_value, "verdict": compared.verdict,
            "pass_to_fail": compared.n_pass_to_fail, "fail_to_pass": compared.n_fail_to_pass,
            "detectable_drop": detectable_drop("binary", base_values), "explain": compared.explain(),
        }))
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
