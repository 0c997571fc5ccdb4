"""The demo's four probes scored by evalkit's two lm-eval models, side by side: time and agreement.

usage: .venv/bin/python benchmarks/bench_probe_scorers.py [--adapter train/classifier-lora] [--json OUT.json]

Each probe as the demo suite runs it (``suites/classifier.yaml``: general_text 60
documents, ifeval 40 prompts at 128 tokens, continuation 90 items, mmlu_mini 4 questions
per subject), on the embedded model and on base + ``--adapter``: first with ``evalkit-hf``
(transformers), then with ``evalkit-vllm`` on one vLLM engine that holds the adapter as a
LoRA request, as the benchmark stage's ``scorer: vllm`` does. Loading a model or starting
the engine is not counted; each line is one probe on one candidate with one scorer. The
last lines compare the scorers: time ratio and per-item agreement.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe_bench import EMBEDDED_MODEL, REPO, print_figures, write_results

from evalkit.benchmarks.evaluate import BenchmarkOutcome, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.sources import resolve_model
from evalkit.record.run_facts import cpu_description

DEMO_PROBES = [
    BenchmarkSpec(task="evalkit_general_text", name="general_text"),
    BenchmarkSpec(task="evalkit_ifeval", name="ifeval", limit=40, max_gen_toks=128),
    BenchmarkSpec(task="evalkit_continuation", name="continuation", limit=90),
    BenchmarkSpec(task="evalkit_mmlu_mini", name="mmlu_mini", formulation="letter", limit_per_subject=4),
]


def agreement(hf: BenchmarkOutcome, vllm: BenchmarkOutcome) -> dict[str, Any]:
    """Per-item agreement of two outcomes: equal items, and the largest difference of a value."""
    ids = sorted(hf.items)
    differences = [abs(hf.items[i] - vllm.items.get(i, float("nan"))) for i in ids]
    return {"items": len(ids), "equal": sum(d == 0.0 for d in differences),
            "max_abs_difference": max(differences, default=0.0), "score_hf": round(hf.acc, 4),
            "score_vllm": round(vllm.acc, 4)}


def main() -> int:
    """Score each probe with both scorers on the base and the adapter; print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=REPO / "train" / "classifier-lora")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    from evalkit.benchmarks.lm import EvalkitLM, EvalkitVLLM
    from evalkit.models.hf import HFBackend
    from evalkit.models.vllm import VLLMBackend

    print(f"cpu: {cpu_description()}; torch threads {torch.get_num_threads()}", flush=True)
    model = resolve_model(EMBEDDED_MODEL)
    variants = {"base": ModelVariant(model, dtype="float32"),
                "adapter": ModelVariant(model, adapter=args.adapter.resolve(), adapter_name="adapter", dtype="float32")}
    tasks = [prepare_benchmark(spec, REPO) for spec in DEMO_PROBES]
    results: list[dict[str, Any]] = []
    outcomes: dict[tuple[str, str, str], BenchmarkOutcome] = {}
    seconds: dict[tuple[str, str, str], float] = {}

    def score(scorer: str, lm_for: Any) -> None:
        for task in tasks:
            for name, variant in variants.items():
                lm = lm_for(variant, task)
                started = time.perf_counter()
                outcome = evaluate_benchmark(task, lm)
                key = (task.spec.metric, name, scorer)
                outcomes[key], seconds[key] = outcome, time.perf_counter() - started
                results.append(print_figures({"probe": task.spec.metric, "candidate": name, "scorer": scorer,
                                              "items": len(outcome.items), "score": round(outcome.acc, 4),
                                              "seconds": round(seconds[key], 1)}))

    hf = HFBackend(device=torch.device("cpu"))
    for variant in variants.values():
        hf.load(variant)  # the load is not the probe's cost
    score("evalkit-hf", lambda variant, task: EvalkitLM(hf, variant, batch_size=task.spec.batch_size))
    hf.close()
    vllm = VLLMBackend()
    started = time.perf_counter()
    for variant in variants.values():
        EvalkitVLLM(vllm, variant)  # starts the engine and loads the adapter: not the probe's cost
    results.append(print_figures({"vllm_engine_start_seconds": round(time.perf_counter() - started, 1)}))
    score("evalkit-vllm", lambda variant, task: EvalkitVLLM(vllm, variant, batch_size=task.spec.batch_size))
    vllm.close()
    total = {scorer: sum(s for (_, _, sc), s in seconds.items() if sc == scorer) for scorer in ("evalkit-hf",
                                                                                              "evalkit-vllm")}
    for task in tasks:
        for name in variants:
            key_hf, key_vllm = (task.spec.metric, name, "evalkit-hf"), (task.spec.metric, name, "evalkit-vllm")
            results.append(print_figures({
                "probe": task.spec.metric, "candidate": name,
                "hf_over_vllm_time": round(seconds[key_hf] / seconds[key_vllm], 2),
                **agreement(outcomes[key_hf], outcomes[key_vllm])}))
    results.append(print_figures({"total_seconds": {k: round(v, 1) for k, v in total.items()},
                                  "hf_over_vllm_time": round(total["evalkit-hf"] / total["evalkit-vllm"], 2)}))
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
