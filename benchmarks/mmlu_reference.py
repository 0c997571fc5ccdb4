"""MMLU reference figure: full-split cloze, zero-shot, on the embedded SmolLM2 vs the published 29.3.

Run: nice .venv/bin/python benchmarks/mmlu_reference.py [--limit-per-subject N] [--dtype D]
     [--progress STATE.json] [--json OUT.json]

Scores all 14,042 test questions in the cloze formulation (``evalkit_mmlu_cloze``: ``Question:
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


def combined(subjects: dict[str, tuple[float, int]]) -> tuple[float, float, int]:
    """Pool per-subject (accuracy, questions) into one accuracy over every question, its stderr and N."""
    total = sum(n for _, n in subjects.values())
    acc = sum(a * n for a, n in subjects.values()) / total
    return acc, math.sqrt(acc * (1 - acc) / max(total - 1, 1)), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-per-subject", type=int, default=None, help="stratified sample (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="scoring dtype (auto: bf16 on a CPU with native bf16, else float32)")
    parser.add_argument("--progress", type=Path,
                        help="resume file: each finished subject is saved here and skipped when rerun")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    backend = HFBackend(device=torch.device("cpu"))
    dtype = scoring_dtype(args.dtype, backend.device)
    lm = EvalkitLM(backend, ModelVariant(resolve_model("smollm2-135m-instruct"), dtype=dtype),
                   batch_size=args.batch_size)
    # One subject at a time, saved as it finishes: the full split takes hours on a small CPU,
    # and an interrupted run picks up where it stopped instead of starting again.
    saved: dict[str, dict[str, object]] = {}
    if args.progress and args.progress.exists():
        state = json.loads(args.progress.read_text())
        if state.get("dtype") == dtype and state.get("limit_per_subject") == args.limit_per_subject:
            saved = state["subjects"]
            print(f"resuming: {len(saved)} subjects already scored in {args.progress}", file=sys.stderr)
    started = time.perf_counter()
    subjects = sorted({question.subject for question in load_mmlu()})
    for index, subject in enumerate(subjects, 1):
        if subject in saved:
            continue
        spec = BenchmarkSpec(task="evalkit_mmlu_cloze", subjects=[subject], limit_per_subject=args.limit_per_subject,
                             batch_size=args.batch_size)
        outcome = evaluate_benchmark(prepare_benchmark(spec, Path.cwd()), lm)
        saved[subject] = {"acc": outcome.acc, "n": len(outcome.items), "seconds": outcome.seconds}
        print(f"  [{index}/{len(subjects)}] {subject}: {outcome.acc:.3f} on {len(outcome.items)} "
              f"({outcome.seconds:.0f} s; {time.perf_counter() - started:.0f} s this session)",
              file=sys.stderr, flush=True)
        if args.progress:
            tmp = args.progress.with_suffix(".tmp")
            tmp.write_text(json.dumps({"dtype": dtype, "limit_per_subject": args.limit_per_subject,
                                       "subjects": saved}, indent=1))
            tmp.replace(args.progress)

    per_subject = {s: (float(v["acc"]), int(v["n"])) for s, v in saved.items()}  # type: ignore[call-overload]
    acc, stderr, total = combined(per_subject)
    seconds = sum(float(v["seconds"]) for v in saved.values())  # type: ignore[arg-type]
    scope = f"{total} questions" + (
        f" ({args.limit_per_subject} per subject)" if args.limit_per_subject else " (full test split)")
    print(f"MMLU cloze, zero-shot, SmolLM2-135M-Instruct (Q4_1 dequantized, {dtype}), {scope}:")
    print(f"  measured acc_norm {acc * 100:.1f} ± {stderr * 100:.1f}   published {PUBLISHED}   "
          f"difference {acc * 100 - PUBLISHED:+.1f}pt   ({seconds:.0f} s of scoring)")
    figures: dict[str, object] = {
        "items": total, "acc_norm": acc, "stderr": stderr, "published": PUBLISHED,
        "dtype": dtype, "seconds": seconds, "subjects": saved,
    }
    if args.limit_per_subject:
        estimate, est_stderr = full_split_estimate(per_subject)
        print(f"  full split estimated from the sample (subjects weighted by size): {estimate * 100:.1f} ± "
              f"{est_stderr * 100:.1f}   difference {estimate * 100 - PUBLISHED:+.1f}pt")
        figures["full_split_estimate"] = {"acc_norm": estimate, "stderr": est_stderr}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
