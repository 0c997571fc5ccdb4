"""The evalkit_ifeval probe on the embedded model: its figures, its cost, and an adapter against it.

Run: .venv/bin/python benchmarks/bench_ifeval.py [--adapter train/classifier-lora]
         [--limit N] [--max-gen-toks 192] [--batch-size 16] [--dtype auto] [--json OUT.json]

Generates a response to every bundled instruction-following prompt
(``evalkit/benchmarks/ifeval_data/evalkit_ifeval.jsonl``) with the embedded
SmolLM2-135M-Instruct through lm-eval's own task machinery (``simple_evaluate``,
``generate_until``, greedy, the model's chat template) on evalkit's ``EvalkitLM``, scores
each with lm-eval's ifeval checkers (offline), and prints the prompt- and
instruction-level accuracy, strict and loose, instruction-level strict accuracy per
instruction id, and the seconds one candidate's pass costs (model load excluded). With
``--adapter`` it also scores each adapter on the same backend and prints the paired
comparison of the per-prompt strict verdicts under a 3% threshold, higher is better
(evalkit's own ``compare_metric``: McNemar for a binary metric), with whether the set can
decide that threshold. The CPU model and its speed flags are printed first.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from probe_bench import CandidateRun, paired_with_base, print_figures, probe_setup, score_candidates, write_results

from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import load_prompts, process_results
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.comparison.paired import compare_metric, rng_for


class RecordingLM(EvalkitLM):
    """evalkit's lm-eval model, keeping each prompt's response (to break accuracy down by instruction)."""

    responses: dict[str, str]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        outputs = super().generate_until(requests, disable_tqdm)
        self.responses = {str(r.doc["key"]): text for r, text in zip(requests, outputs, strict=True)}
        return outputs


def per_instruction(responses: dict[str, str]) -> dict[str, float]:
    """Return instruction id -> the share of its occurrences followed (strict), over the scored prompts."""
    followed: dict[str, list[bool]] = defaultdict(list)
    for prompt in load_prompts():
        if str(prompt.key) in responses:
            verdicts = process_results(prompt.row(), [responses[str(prompt.key)]])["inst_level_strict_acc"]
            for instruction, ok in zip(prompt.instruction_id_list, verdicts, strict=True):
                followed[instruction].append(bool(ok))
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(followed.items())}


def summarise(run: CandidateRun[RecordingLM]) -> dict[str, Any]:
    """Return (and print) one candidate's figures on the probe."""
    responses = run.lm.responses
    return print_figures({
        "candidate": run.label,
        "prompts": len(run.outcome.items),
        **{k: round(v, 4) for k, v in run.outcome.lm_eval_scores.items()},
        "seconds": round(run.seconds, 1),
        "cpu_seconds": round(run.cpu_seconds, 1),  # the process's own, all threads: apart from other jobs' load
        "mean_response_words": round(sum(len(t.split()) for t in responses.values()) / max(1, len(responses)), 1),
        "inst_level_strict_by_id": per_instruction(responses),
    })


def main() -> int:
    """Score the probe on the base (and adapters); print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--limit", type=int, default=None, help="the first N prompts only")
    parser.add_argument("--max-gen-toks", type=int, default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    spec = BenchmarkSpec(task="evalkit_ifeval", limit=args.limit, max_gen_toks=args.max_gen_toks)
    task, backend, dtype, model = probe_setup(spec, args.dtype)
    print(json.dumps({"model": str(model.source), "dtype": dtype, "max_gen_toks": spec.max_gen_toks or 192,
                      "batch_size": args.batch_size}), flush=True)
    results, outcomes = score_candidates(
        task, backend, model, dtype, args.adapter,
        lambda variant: RecordingLM(backend, variant, batch_size=args.batch_size), summarise)
    for name, ids, base_values, values in paired_with_base(outcomes):
        compared = compare_metric("evalkit_ifeval", ids, base_values, values, "3%", rng_for(0, "base", name, "ifeval"),
                                  kind="binary", higher_is_better=True)
        results.append(print_figures({
            "candidate": name, "baseline_strict": round(compared.baseline_value, 4),
            "candidate_strict": round(compared.candidate_value, 4),
            "relative_change": round(compared.relative_delta or 0.0, 4),
            "pass_to_fail": len(compared.pass_to_fail), "fail_to_pass": len(compared.fail_to_pass),
            "p_value": compared.p_value, "verdict": compared.verdict, "explain": compared.explain(),
        }))
    write_results(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
