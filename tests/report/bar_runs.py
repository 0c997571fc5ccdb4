"""Runs whose bars evalkit itself checked, for the bars-table tests (no model, no generation).

:func:`run_with_bars` takes a synthetic classifier run (:func:`evalkit.testing.tiny_model.synthetic_run`),
adds a general_text probe (bits per byte per document, lower is better, declared so like
the real benchmark declares it), compares the candidates with the baseline with
evalkit's own comparison and checks the bars with :func:`evalkit.bars.evaluate.evaluate_bars`, as
the run's ``bars`` stage does. :func:`suite_bars` reads the bars of a suite file, so a
test of the demo suite follows its bars when they change.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import yaml

from evalkit.bars.evaluate import evaluate_bars
from evalkit.bars.spec import BarSpec, InconclusivePolicy
from evalkit.record.results import RunResult
from evalkit.testing.tiny_model import synthetic_run

DEMO_SUITE = Path(__file__).resolve().parents[2] / "suites" / "classifier.yaml"
GENERAL_TEXT = "general_text"

# name -> (shift of bits per byte against the base, per-document noise of that shift):
# the forgetful control loses what it knew (decided), the no-op changes nothing, and
# lora's documents scatter so widely that 60 of them cannot decide a 3% rise.
_GENERAL_TEXT_SHIFT = {"base": (0.0, 0.0), "noop": (0.0, 0.0), "forgetful": (0.3, 0.05), "lora": (0.0, 0.25)}


def suite_bars(path: Path = DEMO_SUITE) -> list[BarSpec]:
    """Return the bars of a suite file, in its order, each parsed as the suite loader parses it."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["bars"]
    return [BarSpec.model_validate(entry) for entry in entries]


def _general_text(run: RunResult, seed: int) -> None:
    ids = [f"doc-{n:03d}" for n in range(60)]
    rng = random.Random(f"general-text-{seed}")
    base = {doc: rng.gauss(1.0, 0.05) for doc in ids}
    for result in run.candidates:
        shift, noise = _GENERAL_TEXT_SHIFT.get(result.name, (0.01, 0.02))
        crng = random.Random(f"general-text-{seed}-{result.name}")
        result.item_values[GENERAL_TEXT] = {doc: value + shift + (crng.gauss(0.0, noise) if noise else 0.0)
                                            for doc, value in base.items()}
    run.sections["metric_kinds"] = {GENERAL_TEXT: {"kind": "continuous", "higher_is_better": False}}


def run_with_bars(bars: Sequence[BarSpec], n_items: int = 60, *, inconclusive: InconclusivePolicy = "fail",
                  seed: int = 0) -> RunResult:
    """Return a run of ``base`` (the baseline) and every candidate the bars name, its bars checked.

    Args:
        bars: the bars, checked in this order.
        n_items: eval items per candidate (each judged, for judge bars).
        inconclusive: the suite's ``inconclusive:`` choice.
        seed: randomness seed (the run is deterministic given it).
    """
    from evalkit.comparison.compare import compare_candidates

    candidates = tuple(dict.fromkeys(["base", *(bar.candidate for bar in bars)]))
    run = synthetic_run(n_items, candidates, judged_items=n_items, seed=seed, with_comparison=False)
    _general_text(run, seed)
    comparison = compare_candidates(run, seed=seed)
    run.sections["comparison"] = comparison.to_dict()
    results = evaluate_bars(bars, run, comparison)
    for result in results:
        result.inconclusive_policy = inconclusive  # what evaluate_bars takes from the suite's inconclusive:
    run.sections["bars"] = [result.model_dump(mode="json") for result in results]
    return run
