"""Checkpoint sweep memory and time: one base in memory for every checkpoint, and no slower than one by one.

Run: .venv/bin/python benchmarks/bench_sweep.py [--repeat 1] [--items 16] [--max-new-tokens 48]
         [--mmlu-per-subject 3] [--subjects 6] [--train-steps 8] [--train-batch 8] [--json OUT.json]

1. Trains the demo-like adapter (LoRA r=16 on q/k/v/o of the embedded SmolLM2-135M-Instruct,
   the classifier's training data) for ``--train-steps`` steps with ``training.save_steps``
   a quarter of that: four real checkpoints of one short run (``evalkit train``; cached in
   the work directory).
2. In fresh subprocesses (so each peak RSS is its own), the task items and an MMLU
   subset (the general-capability benchmark) on the base plus:
   * ``sweep-1``: a ``sweep:`` of the first checkpoint only;
   * ``sweep-4``: a ``sweep:`` of all four (one suite run, one HF backend, adapters
     loaded into one PeftModel and switched);
   * ``one-by-one``: the base and then each checkpoint as its own suite run, one after
     the other in one process (each run loads the base again and frees it).
   Generation cache off; float32; greedy.

Targets: peak RSS of sweep-4 minus sweep-1 at most the 3 extra adapters' size + 10%
(of that size); sweep-4 wall time at most one-by-one's. Prints the CPU model and flags.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from evalkit.record.run_facts import cpu_description

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("EVALKIT_BENCH_DIR", "/tmp/evalkit-bench-sweep"))
MODEL = "smollm2-135m-instruct"


def train_checkpoints(steps: int, batch_size: int) -> list[Path]:
    """Train once (``steps`` steps, a checkpoint every quarter) and return the four checkpoint folders."""
    root = WORK / "adapter" / "checkpoints"
    found = sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if len(found) == 4:
        return found
    config = {
        "model": MODEL,
        "prompt": {"system": "You are a customer support classifier. Always output valid JSON.",
                   "user": "{{ instruction }}\n\n{{ input }}", "expected": "{{ output }}"},
        "data": str(REPO / "data" / "classifier" / "train.jsonl"),
        "eval_data": str(REPO / "data" / "classifier" / "eval.jsonl"),
        "output_dir": str(WORK / "adapter"),
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "training": {"max_steps": steps, "save_steps": steps // 4, "batch_size": batch_size, "learning_rate": 2e-3,
                     "max_seq_length": 256, "precision": "float32"},
    }
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "train.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "evalkit", "train", str(path)], check=True, cwd=REPO)
    print(f"trained {steps} steps of batch {batch_size} with save_steps {steps // 4} "
          f"in {time.perf_counter() - started:.0f} s")
    return sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def suite_dict(args: argparse.Namespace, adapters: list[str], name: str, base: bool) -> dict[str, Any]:
    """Return a suite: the classifier items and an MMLU subset, the base and/or a sweep of adapters."""
    from evalkit.benchmarks.mmlu_data import MMLU_SUBJECTS

    suite: dict[str, Any] = {
        "name": name,
        "dataset": {"path": str(REPO / "data" / "classifier" / "eval.jsonl"), "limit": args.items},
        "prompt": {"system": "You are a customer support classifier. Always output valid JSON.",
                   "user": "{{ instruction }}\n\n{{ input }}", "expected": "{{ output }}"},
        "generation": {"max_new_tokens": args.max_new_tokens, "batch_size": 16},
        "candidates": [{"name": "base", "model": MODEL, "dtype": "float32"}] if base else [],
        "checks": ["exact_match", "json_valid"],
        "benchmarks": [{"task": "mmlu", "subjects": list(MMLU_SUBJECTS)[: args.subjects],
                        "limit_per_subject": args.mmlu_per_subject, "dtype": "float32", "max_drop": "50%"}],
    }
    if adapters:
        suite["sweep"] = {"name": "ckpt", "model": MODEL, "adapters": adapters, "benchmark": "mmlu",
                          "dtype": "float32"}
    if not suite["candidates"]:
        # A suite needs a candidate of its own: the first adapter, as a plain candidate.
        suite["candidates"] = [{"name": "only", "model": MODEL, "adapter": adapters[0], "dtype": "float32"}]
        suite.pop("sweep")
    return suite


def run_suite_dict(suite: dict[str, Any], path: Path) -> Any:
    """Write and run a suite with the generation cache off; return the run."""
    from evalkit.runner import execute_suite
    from evalkit.suite.config import load_suite

    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return execute_suite(load_suite(path), cache=None)


def child(args: argparse.Namespace) -> None:
    """One measured configuration in this process; prints a JSON line."""
    checkpoints = [str(p) for p in sorted((WORK / "adapter" / "checkpoints").glob("checkpoint-*"),
                                          key=lambda p: int(p.name.split("-")[1]))]
    import evalkit.runner  # noqa: F401  (imports torch & co before the clock starts)

    started = time.perf_counter()
    pick = None
    if args.child == "one-by-one":
        run_suite_dict(suite_dict(args, [], "bench-base", base=True), WORK / "suite-base.yaml")
        for n, checkpoint in enumerate(checkpoints):
            run_suite_dict(suite_dict(args, [checkpoint], f"bench-{n}", base=False), WORK / f"suite-{n}.yaml")
    else:
        count = int(args.child.split("-")[1])
        run = run_suite_dict(suite_dict(args, checkpoints[:count], args.child, base=True), WORK / "suite-sweep.yaml")
        pick = run.sections.get("sweep", {}).get("pick")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": args.child, "seconds": seconds, "peak_rss_mib": peak_kib / 1024, "pick": pick}))


def measure(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one configuration in a fresh subprocess and return its JSON line."""
    command = [sys.executable, __file__, "--child", mode, "--items", str(args.items),
               "--max-new-tokens", str(args.max_new_tokens), "--mmlu-per-subject", str(args.mmlu_per_subject),
               "--subjects", str(args.subjects)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Train the checkpoints, measure the three configurations, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--mmlu-per-subject", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--train-steps", type=int, default=8, help="training steps (a multiple of 4)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs of each configuration (medians)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(cpu_description())
    checkpoints = train_checkpoints(args.train_steps, args.train_batch)
    adapter_mib = [(p / "adapter_model.safetensors").stat().st_size / 2**20 for p in checkpoints]
    modes = ("sweep-1", "sweep-4", "one-by-one")
    # Interleaved repeats (all three modes, then again): a load spike hits every mode, and
    # the median of each mode is the figure, since single runs here spread by about 10%.
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(measure(mode, args))
    results = {mode: {"seconds": statistics.median(r["seconds"] for r in runs[mode]),
                      "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs[mode]),
                      "pick": runs[mode][-1]["pick"], "all_seconds": [round(r["seconds"], 2) for r in runs[mode]]}
               for mode in modes}
    growth = results["sweep-4"]["peak_rss_mib"] - results["sweep-1"]["peak_rss_mib"]
    allowed = sum(adapter_mib[1:]) * 1.1
    ratios = [four["seconds"] / one["seconds"] for four, one in zip(runs["sweep-4"], runs["one-by-one"], strict=True)]
    ratio = statistics.median(ratios)
    print(f"workload: {args.items} task items x {args.max_new_tokens} new tokens, MMLU {args.subjects} subjects x "
          f"{args.mmlu_per_subject}, base + 4 checkpoints")
    for mode, figures in results.items():
        print(f"{mode:>11}: {figures['seconds']:7.1f} s  peak RSS {figures['peak_rss_mib']:8.1f} MiB"
              + (f"  pick {figures['pick']}" if figures["pick"] else "")
              + (f"  (median of {args.repeat}: {figures['all_seconds']})" if args.repeat > 1 else ""))
    print(f"adapter size: {adapter_mib[0]:.1f} MiB each; RSS growth 1 -> 4 checkpoints: {growth:+.1f} MiB "
          f"(target <= {allowed:.1f} MiB: {'met' if growth <= allowed else 'NOT met'})")
    print(f"sweep-4 / one-by-one time: {ratio:.2f}x (target <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'})"
          + (f", median of {args.repeat} interleaved pairs {[round(r, 2) for r in ratios]}" if args.repeat > 1 else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "results": results,
                                               "adapter_mib": adapter_mib, "rss_growth_mib": growth,
                                               "time_ratio": ratio, "time_ratios": ratios}, indent=2) + "\n")


if __name__ == "__main__":
    main()
