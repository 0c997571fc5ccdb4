"""Contamination on the demo's real data: what it finds and what it costs.

1. The demo adapter's training data (``data/classifier/train.jsonl``, and the DPO pairs
   ``preferences.jsonl``) against every item of MMLU's test split (14,042 questions),
   the classifier eval split, the hand-written eval set, and the bundled
   ``evalkit_general_text`` / ``evalkit_ifeval`` items where evalkit can list them:
   items sharing a word 13-gram, the fraction and examples, and the seconds each took.
2. The ``contamination`` run stage on the demo suite with the full MMLU split, twice in
   one process on an empty cache: the second run must compute nothing (every figure read
   from the cache); what it still costs is listing and hashing the items (its key).

Usage::

    .venv/bin/python benchmarks/bench_contamination.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "data" / "classifier" / "train.jsonl"
PREFERENCES = REPO / "data" / "classifier" / "preferences.jsonl"


def main() -> int:
    os.environ["EVALKIT_HOME"] = tempfile.mkdtemp(prefix="evalkit-contamination-")  # an empty cache
    from evalkit.benchmarks.evaluate import benchmark_documents
    from evalkit.benchmarks.spec import BenchmarkSpec
    from evalkit.contamination import ngrams as overlap
    from evalkit.data.items import comparison_text, load_items
    from evalkit.record.run_facts import cpu_description

    print(f"machine: {cpu_description()}")
    started = time.perf_counter()
    sets: dict[str, list[overlap.ItemText]] = {}
    for task in ("evalkit_mmlu", "evalkit_general_text", "evalkit_ifeval"):
        try:
            documents = benchmark_documents(BenchmarkSpec(task=task), REPO)
        except Exception as exc:  # a task another part of evalkit has not bundled yet
            print(f"{task}: not listed ({type(exc).__name__}: {exc})")
            continue
        if documents is None:
            print(f"{task}: evalkit cannot list its items")
            continue
        sets[task] = documents
    for name in ("eval", "handwritten"):
        rows = load_items(REPO / "data" / "classifier" / f"{name}.jsonl")
        sets[f"classifier {name} split (input)"] = [(i.id, comparison_text(i.fields, "input")) for i in rows]
    print(f"listing the item sets: {time.perf_counter() - started:.2f} s "
          f"({', '.join(f'{k}: {len(v)}' for k, v in sets.items())})")
    for training in (TRAIN, PREFERENCES):
        started, cpu = time.perf_counter(), time.process_time()
        index = overlap.TrainingNgrams(overlap.training_texts(training))
        print(f"\n{training.relative_to(REPO)}: indexed in {time.perf_counter() - started:.2f} s "
              f"(CPU {time.process_time() - cpu:.2f} s)")
        for name, items in sets.items():
            started, cpu = time.perf_counter(), time.process_time()
            result = index.overlap(items)
            shown = "; ".join(f"{e.item_id}: '{e.ngram}'" for e in result.examples[:3])
            print(f"  {name}: {overlap.describe(result)} [{time.perf_counter() - started:.2f} s, "
                  f"CPU {time.process_time() - cpu:.2f} s]"
                  + (f"\n    e.g. {shown}" if shown else ""))
    print()
    return stage_twice()


def stage_twice() -> int:
    """The run stage on the demo suite with all of MMLU, cold then cached."""
    from evalkit.contamination import ngrams as overlap
    from evalkit.contamination.stage import run_contamination
    from evalkit.progress import SilentProgress
    from evalkit.record.results import CandidateResult, RunResult
    from evalkit.stages import load_inputs
    from evalkit.suite.config import load_suite_with_overrides

    suite = load_suite_with_overrides(REPO / "suites" / "classifier.yaml",
                                      ["benchmarks=[{task: evalkit_mmlu, name: mmlu_mini, max_drop: 3%}]"])
    inputs = load_inputs(suite)
    computed: list[int] = []
    measure = overlap.TrainingNgrams.overlap

    def counting(self: overlap.TrainingNgrams, items: Any, *args: Any) -> overlap.OverlapResult:
        computed.append(len(items))
        return measure(self, items, *args)

    overlap.TrainingNgrams.overlap = counting  # type: ignore[method-assign,assignment]
    for attempt in ("first (empty cache)", "second (cached)"):
        run = RunResult("bench", suite.name, str(suite.source), "base",
                        [CandidateResult(c.name) for c in suite.candidates], "now")
        before, started, cpu = len(computed), time.perf_counter(), time.process_time()
        run_contamination(inputs, run, {}, SilentProgress())
        print(f"stage on suites/classifier.yaml with all of MMLU, {attempt}: {time.perf_counter() - started:.2f} s "
              f"(CPU {time.process_time() - cpu:.2f} s), {len(computed) - before} item sets compared")
    lora = run.sections["contamination"]["candidates"]["lora"]["benchmarks"]["mmlu_mini"]
    print(f"lora vs MMLU: {lora['contaminated']} of {lora['items']}, cached: {lora['cached']}")
    return 0 if lora["cached"] and len(computed) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
