"""MMLU reference figure: full-split cloze, zero-shot, on the embedded SmolLM2 vs the published 29.3.

Run: nice .venv/bin/python benchmarks/mmlu_reference.py [--limit-per-subject N] [--json OUT.json]

Scores all 14,042 test questions in the cloze formulation (``mmlu_cloze``: ``Question:
...\\nAnswer:``, each answer text scored, ``acc_norm``) through evalkit's benchmark path
(lm-eval's ``simple_evaluate`` with ``EvalkitLM``) and prints the accuracy beside the
published 29.3 (SmolLM2-135M-Instruct model card: MMLU cloze, zero-shot, lighteval).
The embedded model is the Q4_1 GGUF dequantized, and lighteval's prompt and
normalisation differ slightly from lm-eval's, so a small difference is expected; it is
reported as measured, not tuned away.

Long on a 2-core CPU (about 56,000 scored answers; two to three hours measured here,
most of it on the longest questions, professional law's). ``--limit-per-subject N``
scores N questions per subject and prints two figures: the plain accuracy over the
sample (every subject weighing the same, a macro average) and the full split's accuracy
estimated from it (each subject weighted by its share of the 14,042 questions, with the
stratified standard error), which is what the full run would measure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.mmlu_data import load_mmlu
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model

PUBLISHED = 29.3


def full_split_estimate(subjects: dict[str, tuple[float, int]]) -> tuple[float, float]:
    """Estimate the full test split's accuracy from per-subject (accuracy, questions scored).

    Each subject weighs its share of the full split; the standard error is the stratified
    one, with the finite-population correction (a fully scored subject adds nothing).
    """
    sizes = Counter(question.subject for question in load_mmlu())
    total = sum(sizes.values())
    estimate = sum(sizes[name] / total * acc for name, (acc, _) in subjects.items())
    variance = sum(
        (sizes[name] / total) ** 2 * acc * (1 - acc) / max(n - 1, 1) * (1 - n / sizes[name])
        for name, (acc, n) in subjects.items()
    )
    return estimate, math.sqrt(variance)


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
    figures: dict[str, object] = {
        "items": len(outcome.items), "acc_norm": outcome.acc, "stderr": outcome.stderr, "published": PUBLISHED,
        "dtype": dtype, "seconds": outcome.seconds,
        "subjects": {s: {"acc": v.acc, "n": v.n} for s, v in outcome.subjects.items()},
    }
    if args.limit_per_subject:
        estimate, stderr = full_split_estimate({s: (v.acc, v.n) for s, v in outcome.subjects.items()})
        print(f"  full split estimated from the sample (subjects weighted by size): {estimate * 100:.1f} ± "
              f"{stderr * 100:.1f}   difference {estimate * 100 - PUBLISHED:+.1f}pt")
        figures["full_split_estimate"] = {"acc_norm": estimate, "stderr": stderr}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
