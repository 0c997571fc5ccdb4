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
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalkit.benchmarks.evaluate import BenchmarkOutcome, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.comparison.paired import compare_metric, detectable_drop
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
        "items": len(outcome.items),
        "acc_norm": round(outcome.acc, 4),
        **{f"lm_eval_{k}": round(v, 4) for k, v in outcome.lm_eval_scores.items()},
        "genres": {genre: round(score.acc, 4) for genre, score in outcome.subjects.items()},
        "seconds": round(seconds, 1),
    }
    print(json.dumps(figures), flush=True)
    return figures


def main() -> int:
    """Score the probe on the base (and adapters); print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=90, help="the first N items (0: all 240)")
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"cpu: {cpu_description()}; torch threads {torch.get_num_threads()}", flush=True)
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_continuation", limit=args.limit or None), REPO)
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
        base_values = np.array([base.items[i] for i in ids])
        compared = compare_metric("continuation", ids, base_values, np.array([outcome.items[i] for i in ids]), "3%",
                                  rng_for(0, "base", name, "cont"), kind="binary")
        line = {"candidate": name, "delta": round(compared.delta, 4), "ci": [round(compared.ci_low, 4),
                                                                             round(compared.ci_high, 4)],
                "p_value": compared.p_value, "verdict": compared.verdict,
                "pass_to_fail": compared.n_pass_to_fail, "fail_to_pass": compared.n_fail_to_pass,
                "detectable_drop": detectable_drop("binary", base_values), "explain": compared.explain()}
        print(json.dumps(line), flush=True)
        results.append(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
