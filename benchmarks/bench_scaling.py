"""Scaling: Ray with 2 single-threaded workers vs 1, and a fleet of 2 endpoints vs 1, side by side.

Run: .venv/bin/python benchmarks/bench_scaling.py [--items 32] [--max-new-tokens 16]
         [--fleet-items 200] [--delay 0.05] [--concurrency 4] [--json OUT.json]

1. Ray executor (target: 2 workers >= 1.7x the items/s of 1, identical completions): the
   embedded SmolLM2-135M-Instruct, float32, greedy, on the first ``--items`` classifier
   prompts in chunks of 4 (``generation.batch_size``), one chunk per work unit, each
   worker an actor with 1 CPU and 1 torch thread, on a local Ray cluster of 2 CPUs.
   Actor start-up and model loading are excluded (one warm-up unit per worker first)
   and printed separately: that is a fixed cost per run, not throughput.
   1b. The same executor on units that wait on a scripted endpoint instead of computing:
   the executor's own parallelism, which CPU contention from other processes cannot hide.
2. Endpoint fleet (target: 2 endpoints >= 1.7x the items/s of 1 at the same per-endpoint
   concurrency, identical completions): scripted OpenAI-compatible endpoints on
   loopback (evalkit.models.mock) that answer after a fixed ``--delay``,
   so the endpoints are the bottleneck, as GPU servers are.

On a shared machine compare the ratios, not the seconds; the CPU model and flags and
the load average are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from evalkit.record.run_facts import cpu_description

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"


def classifier_conversations(count: int) -> list[list[dict[str, str]]]:
    """Return the first ``count`` classifier eval items as chat prompts (the classifier suite's wording)."""
    from evalkit.data.items import load_items

    items = load_items(REPO / "data" / "classifier" / "eval.jsonl", limit=count)
    system = "You are a customer support classifier. Always output valid JSON."
    return [[{"role": "system", "content": system},
             {"role": "user", "content": f"{item.fields['instruction']}\n\n{item.fields['input']}"}]
            for item in items]


def timed_chunks(executor: Any, backend: str, variant: Any, chunks: list[Any],
                 settings: Any) -> tuple[list[list[tuple[str, str]]], float]:
    """Generate every chunk on the executor, then close it.

    Returns:
        Each chunk's generations in chunk order, and the seconds the generation took (closing excluded).
    """
    done: dict[int, list[tuple[str, str]]] = {}
    started = time.perf_counter()
    executor.generate(backend, variant, chunks, settings,
                      lambda i, generations, usage, into=done: into.__setitem__(i, generations))
    seconds = time.perf_counter() - started
    executor.close()
    return [done[i] for i in range(len(chunks))], seconds


def bench_ray(items: int, max_new_tokens: int) -> dict[str, Any]:
    """Time the same chunks on a Ray executor of 1 worker and of 2 (steady state, warm actors)."""
    import ray

    from evalkit.executors.ray_executor import RayExecutor
    from evalkit.models.backend import ModelVariant
    from evalkit.models.sources import resolve_model
    from evalkit.suite.config import GenerationConfig, RayExecutorConfig

    variant = ModelVariant(resolve_model(MODEL), dtype="float32")
    settings = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=4)
    conversations = classifier_conversations(items)
    chunks = [conversations[i : i + 4] for i in range(0, len(conversations), 4)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    figures: dict[str, Any] = {}
    outputs: dict[int, list[list[tuple[str, str]]]] = {}
    try:
        for workers in (1, 2):
            executor = RayExecutor(RayExecutorConfig(address="local", num_workers=workers, cpus_per_worker=1))
            started = time.perf_counter()
            warm = [conversations[:1]] * workers
            executor.generate("hf", variant, warm, settings, lambda index, done, usage: None)
            startup = time.perf_counter() - started
            outputs[workers], seconds = timed_chunks(executor, "hf", variant, chunks, settings)
            figures[f"workers_{workers}"] = {"seconds": round(seconds, 2), "items_per_s": round(items / seconds, 2),
                                             "startup_s": round(startup, 1)}
            print(f"  ray {workers} worker(s): {seconds:6.2f} s  {items / seconds:6.2f} items/s  "
                  f"(actor start + model load, excluded: {startup:.1f} s)", flush=True)
    finally:
        ray.shutdown()
    figures["speedup"] = round(figures["workers_1"]["seconds"] / figures["workers_2"]["seconds"], 2)
    figures["identical"] = outputs[1] == outputs[2]
    return figures


def bench_ray_io(units: int, delay: float) -> dict[str, Any]:
    """Time Ray units whose cost is waiting, not computing (a scripted endpoint), 1 worker vs 2.

    This separates the executor's own parallelism from CPU contention: each unit is 4
    requests, 1 in flight per worker, to an endpoint that answers after ``delay`` seconds.
    """
    import ray

    from evalkit.executors.ray_executor import RayExecutor
    from evalkit.models.backend import ModelVariant
    from evalkit.models.mock import ScriptedEndpoint
    from evalkit.models.sources import hosted_model
    from evalkit.suite.config import GenerationConfig, RayExecutorConfig

    settings = GenerationConfig(max_new_tokens=8, batch_size=4)
    conversations = [[{"role": "user", "content": f"ticket {n}"}] for n in range(units * 4)]
    chunks = [conversations[i : i + 4] for i in range(0, len(conversations), 4)]
    figures: dict[str, Any] = {}
    outputs: dict[int, list[Any]] = {}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        with ScriptedEndpoint(delay_s=delay) as endpoint:
            options = {"base_url": endpoint.base_url, "model": "tiny", "concurrency": 1, "max_retries": 0}
            variant = ModelVariant(hosted_model("tiny", endpoint.base_url), options=options)
            for workers in (1, 2):
                executor = RayExecutor(RayExecutorConfig(address="local", num_workers=workers, cpus_per_worker=1))
                executor.generate("openai_server", variant, [chunks[0][:1]] * workers, settings,
                                  lambda i, d, usage: None)
                outputs[workers], seconds = timed_chunks(executor, "openai_server", variant, chunks, settings)
                figures[f"workers_{workers}"] = {"seconds": round(seconds, 2)}
                print(f"  ray {workers} worker(s), waiting units: {seconds:6.2f} s", flush=True)
    finally:
        ray.shutdown()
    figures["speedup"] = round(figures["workers_1"]["seconds"] / figures["workers_2"]["seconds"], 2)
    figures["identical"] = outputs[1] == outputs[2]
    return figures


def bench_fleet(items: int, delay: float, concurrency: int) -> dict[str, Any]:
    """Time the same requests on a fleet of 1 scripted endpoint and of 2, same per-endpoint concurrency."""
    from evalkit.models.fleet import EndpointFleet
    from evalkit.models.mock import ScriptedEndpoint

    conversations = [[{"role": "user", "content": f"ticket {n}: where is my order?"}] for n in range(items)]
    figures: dict[str, Any] = {}
    answers: dict[int, list[str]] = {}
    with ScriptedEndpoint(delay_s=delay) as first, ScriptedEndpoint(delay_s=delay) as second:
        for count, endpoints in ((1, [first]), (2, [first, second])):
            urls = [e.base_url for e in endpoints]
            fleet = EndpointFleet(urls, "tiny", ["EMPTY"] * count, concurrency=concurrency, max_retries=0)
            fleet.verify()
            started = time.perf_counter()
            answers[count] = fleet.complete_all(conversations, temperature=0.0, max_tokens=16)
            seconds = time.perf_counter() - started
            fleet.close()
            figures[f"endpoints_{count}"] = {"seconds": round(seconds, 2), "items_per_s": round(items / seconds, 1)}
            print(f"  fleet of {count}: {seconds:6.2f} s  {items / seconds:7.1f} items/s", flush=True)
    figures["speedup"] = round(figures["endpoints_2"]["items_per_s"] / figures["endpoints_1"]["items_per_s"], 2)
    figures["identical"] = answers[1] == answers[2]
    return figures


def main() -> int:
    """Run both comparisons and print the ratios against their targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32, help="classifier prompts for the Ray comparison (32)")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens per completion (16)")
    parser.add_argument("--fleet-items", type=int, default=200, help="requests for the fleet comparison (200)")
    parser.add_argument("--delay", type=float, default=0.05, help="each scripted endpoint's answer delay, s (0.05)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per endpoint (4)")
    parser.add_argument("--io-units", type=int, default=8, help="units for the waiting-units Ray comparison (8)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    print(f"cpu: {cpu_description()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"1. Ray executor, {args.items} items, {args.max_new_tokens} new tokens, 1 CPU per worker")
    ray_figures = bench_ray(args.items, args.max_new_tokens)
    print(f"   2 workers vs 1: {ray_figures['speedup']:.2f}x (target >= 1.7x); "
          f"identical: {ray_figures['identical']}")
    print(f"1b. Ray executor, {args.io_units} units that wait on an endpoint ({args.delay * 4000:.0f} ms each)")
    io_figures = bench_ray_io(args.io_units, args.delay)
    print(f"   2 workers vs 1: {io_figures['speedup']:.2f}x (the executor's own parallelism, CPU-independent); "
          f"identical: {io_figures['identical']}")
    print(f"2. Fleet, {args.fleet_items} requests, {args.delay * 1000:.0f} ms per answer, "
          f"{args.concurrency} in flight per endpoint")
    fleet_figures = bench_fleet(args.fleet_items, args.delay, args.concurrency)
    print(f"   2 endpoints vs 1: {fleet_figures['speedup']:.2f}x items/s (target >= 1.7x); "
          f"identical: {fleet_figures['identical']}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_description(), "ray": ray_figures,
                                               "ray_io": io_figures, "fleet": fleet_figures}, indent=2))
    return 0 if ray_figures["identical"] and io_figures["identical"] and fleet_figures["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
