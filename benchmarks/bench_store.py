"""Comparison and store targets, measured side by side in one run.

1. Statistics: ``compare_candidates`` on a run of 10,000 items × 4 candidates (the
   baseline and 3 others; also 5, for margin) with the classifier suite's metrics
   (9 check metrics, 3 judge criteria, 1 benchmark): target < 1 s in total.
2. The run store: saving and loading that run.
3. Generation cache: ``evalkit run`` of an unchanged suite twice, each in a fresh
   process (imports, model fingerprinting, store, report: everything a user waits
   for), the first on an empty store: target second >= 20x faster than the first.

Usage::

    .venv/bin/python benchmarks/bench_store.py                # SmolLM2, 32 classifier items
    .venv/bin/python benchmarks/bench_store.py --model tiny   # the tiny random Llama (fast)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from evalkit.checks import Score
from evalkit.comparison.compare import compare_candidates
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.store import RunStore

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["severity", "category", "urgency", "sentiment", "recommended_action"]
JUDGE = ["judge.classifier_quality.format", "judge.classifier_quality.correctness",
         "judge.classifier_quality.tone"]


def synthetic_run(items: int, candidates: int, seed: int = 0) -> RunResult:
    """A run whose candidates agree with the baseline on most items, as real ones do."""
    rng = np.random.default_rng(seed)
    base_fields = rng.random((items, len(FIELDS))) < 0.8
    base_judge = rng.integers(2, 6, (items, len(JUDGE)))
    results = []
    for number in range(candidates):
        flip = rng.random((items, len(FIELDS))) < (0.0 if number == 0 else 0.08)
        fields = base_fields ^ flip
        judge = np.clip(base_judge + (rng.integers(-1, 2, base_judge.shape) if number else 0), 1, 5)
        valid = rng.random(items) < (0.97 if number else 0.95)
        result = CandidateResult(name="base" if number == 0 else f"cand{number}")
        for index in range(items):
            scores = {f"field_accuracy.{f}": Score(float(fields[index, k])) for k, f in enumerate(FIELDS)}
            scores["field_accuracy"] = Score(float(fields[index].mean()))
            scores["exact_match"] = Score(float(fields[index].all()))
            scores["json_valid"] = Score(float(valid[index]))
            scores["json_schema"] = Score(float(valid[index] and fields[index, 0]))
            scores.update({j: Score(float(judge[index, k])) for k, j in enumerate(JUDGE)})
            result.items.append(ItemResult(item_id=str(index + 1), fields={"input": f"message {index}"},
                                           prompt="prompt", expected="{}", prediction="{}", scores=scores))
        result.item_values["mmlu_mini"] = {f"subject/{i}": float(rng.random() < 0.3) for i in range(570)}
        results.append(result)
    return RunResult(run_id="bench", suite_name="bench", suite_path="", baseline="base", candidates=results,
                     started_at="2026-11-28T00:00:00+00:00")


def bench_statistics(items: int, candidates: int, repeats: int = 3) -> float:
    run = synthetic_run(items, candidates)
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        comparison = compare_candidates(run)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    compared = sum(len(c.metrics) for c in comparison.candidates.values())
    # CPU time as well as wall time: on a shared 2-core machine the wall clock includes
    # waiting for a core, which says more about the neighbours than about this code.
    print(f"statistics: {items} items x {candidates} candidates, {compared} metric comparisons: "
          f"median wall {statistics.median(walls):.3f} s, CPU {statistics.median(cpus):.3f} s "
          f"(wall per run: {', '.join(f'{t:.3f}' for t in walls)})")
    return statistics.median(walls)


def bench_store(items: int, candidates: int) -> None:
    run = synthetic_run(items, candidates)
    with tempfile.TemporaryDirectory() as directory, RunStore(Path(directory) / "bench.db") as store:
        started, cpu = time.perf_counter(), time.process_time()
        store.save_run(run)
        saved, saved_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        store.load_run(run.run_id)
        loaded, loaded_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"store: {items} items x {candidates} candidates: save {saved:.2f} s (CPU {saved_cpu:.2f} s), "
          f"load {loaded:.2f} s (CPU {loaded_cpu:.2f} s)")


def write_suite(directory: Path, model: str, items: int) -> Path:
    if model == "tiny":
        from evalkit.testing.tiny_model import build_tiny_llama

        model = str(build_tiny_llama(directory / "tiny-llama"))
    else:
        model = "smollm2-135m-instruct"
    suite = {
        "name": "bench-cache",
        "dataset": {"path": str(REPO / "data" / "classifier" / "eval.jsonl"), "limit": items},
        "prompt": {"system": "You are a customer support classifier. Always output valid JSON.",
                   "user": "{{ instruction }}\n\n{{ input }}", "expected": "{{ output }}"},
        "generation": {"max_new_tokens": 64, "batch_size": 16},
        "candidates": [{"name": "base", "model": model}],
        "checks": ["exact_match", "json_valid", {"json_schema": str(REPO / "suites" / "schemas" / "classifier.json")},
                   "field_accuracy"],
        "output_dir": str(directory / "reports"),
        "store": str(directory / "bench.db"),
    }
    path = directory / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def timed_cli_run(suite: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite)], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"}, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"evalkit run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed


def bench_cache(model: str, items: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        suite = write_suite(Path(directory), model, items)
        first = timed_cli_run(suite)
        second = timed_cli_run(suite)
        with RunStore(Path(directory) / "bench.db") as store:
            runs = store.list_runs("bench-cache")
            cached = len(store.cache)
            loaded = [store.load_run(r.run_id) for r in runs]
        first_items, second_items = loaded[0].candidates[0].items, loaded[1].candidates[0].items
        same = [i.prediction for i in first_items] == [i.prediction for i in second_items]
        print(f"cache, `evalkit run` in a fresh process each time, {items} classifier items on {model}: "
              f"first {first:.1f} s, second {second:.1f} s: {first / second:.1f}x faster "
              f"({cached} generations cached, identical predictions: {same})")

        # The same two runs in one process, imports done beforehand: what the cache
        # itself saves (model loading and generation), without interpreter start-up.
        import evalkit.models.hf  # noqa: F401
        from evalkit.api import run_suite

        store = Path(directory) / "in-process.db"
        started = time.perf_counter()
        run_suite(suite, store=store, write=True)
        first_in = time.perf_counter() - started
        started = time.perf_counter()
        run_suite(suite, store=store, write=True)
        second_in = time.perf_counter() - started
        print(f"cache, two `run_suite` calls in one process (imports excluded): first {first_in:.1f} s, "
              f"second {second_in:.2f} s: {first_in / second_in:.0f}x faster")
    return {"cache_speedup_fresh_process": first / second, "cache_speedup_in_process": first_in / second_in}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--items", type=int, default=32, help="classifier items in the cache benchmark")
    parser.add_argument("--skip-cache", action="store_true", help="only the statistics and store figures")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, float] = {"stats_4_candidates_s": bench_statistics(10_000, 4),
               "stats_5_candidates_s": bench_statistics(10_000, 5)}
    bench_store(10_000, 4)
    if not args.skip_cache:
        results.update(bench_cache(args.model, args.items))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
