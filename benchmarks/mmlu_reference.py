"""MMLU reference figure: full-split cloze, zero-shot, on the embedded SmolLM2 vs the published 29.3.

Run: nice .venv/bin/python benchmarks/mmlu_reference.py [--limit-per-subject N] [--json OUT.json]

Scores all 14,042 test questions in the cloze formulation (``mmlu_cloze``: ``Question:
...\\nAnswer:``, each answer text scored, ``acc_norm``) through evalkit's benchmark path
(lm-eval's ``simple_evaluate`` with ``EvalkitLM``) and prints the accuracy beside the
published 29.3 (SmolLM2-135M-Instruct model card: MMLU cloze, zero-shot, lighteval).
The embedded model is the Q4_1 GGUF dequantized, and lighteval's prompt and
normalisation differ slightly from lm-eval's, so a small difference is expected; it is
reported as measured, not tuned away.

Long on a 2-core CPU (about 56,000 scored answers); ``--limit-per-subject N`` gives a
stratified estimate on N questions per subject first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model

PUBLISHED = 29.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-per-subject", type=int, default=None, help="stratified sample (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    spec = BenchmarkSpec(task="mmlu_cloze", limit_per_subject=args.limit_per_subject, batch_size=args.batch_size)
    task = prepare_benchmark(spec, Path.cwd())
    backend = HFBackend(device=torch.device("cpu"))
    dtype = scoring_dtype("auto", backend.device)
    done = [0, time.perf_counter()]

    def report(requests: int) -> None:
        done[0] += requests
        if done[0] // 2000 != (done[0] - requests) // 2000:
            print(f"  {done[0]} answers scored, {time.perf_counter() - done[1]:.0f} s", file=sys.stderr, flush=True)

    lm = EvalkitLM(backend, ModelVariant(resolve_model("smollm2-135m-instruct"), dtype=dtype),
                   batch_size=args.batch_size, on_progress=report)
    outcome = evaluate_benchmark(task, lm)
    measured = outcome.acc * 100
    scope = f"{len(outcome.items)} questions" + (
        f" ({args.limit_per_subject} per subject)" if args.limit_per_subject else " (full test split)")
    print(f"MMLU cloze, zero-shot, SmolLM2-135M-Instruct (Q4_1 dequantized, {dtype}), {scope}:")
    print(f"  measured acc_norm {measured:.1f} ± {outcome.stderr * 100:.1f}   published {PUBLISHED}   "
          f"difference {measured - PUBLISHED:+.1f}pt   ({outcome.seconds:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "items": len(outcome.items), "acc_norm": outcome.acc, "stderr": outcome.stderr, "published": PUBLISHED,
            "dtype": dtype, "seconds": outcome.seconds,
            "subjects": {s: {"acc": v.acc, "n": v.n} for s, v in outcome.subjects.items()},
        }, indent=2))


if __name__ == "__main__":
    main()
