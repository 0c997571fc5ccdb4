"""What the probe speed scripts share (bench_continuation, bench_general_text, bench_ifeval).

Each scores one bundled lm-eval probe with the embedded model on a CPU HF backend, the
base and then each ``--adapter``, prints one JSON line of figures per candidate, compares
each adapter with the base item by item, and can write every line to ``--json``.
Not a script: the scripts import it (their folder is on ``sys.path`` when run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from evalkit.benchmarks.evaluate import BenchmarkOutcome, BenchmarkTask, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM, scoring_dtype
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import ResolvedModel, resolve_model
from evalkit.record.run_facts import cpu_description

REPO = Path(__file__).resolve().parents[1]
EMBEDDED_MODEL = "smollm2-135m-instruct"

LM = TypeVar("LM", bound=EvalkitLM)


@dataclass(frozen=True)
class CandidateRun(Generic[LM]):
    """One candidate's pass over the probe: its label, model, outcome and cost (model load excluded)."""

    label: str
    lm: LM
    outcome: BenchmarkOutcome
    seconds: float
    cpu_seconds: float


def probe_setup(spec: BenchmarkSpec, dtype: str) -> tuple[BenchmarkTask, HFBackend, str, ResolvedModel]:
    """Print the CPU line, then ready the probe's task and the embedded model on a CPU HF backend.

    Returns:
        The task, the backend, the scoring dtype ``dtype`` resolves to, and the embedded model.
    """
    print(f"cpu: {cpu_description()}; torch threads {torch.get_num_threads()}", flush=True)
    task = prepare_benchmark(spec, REPO)
    backend = HFBackend(device=torch.device("cpu"))
    return task, backend, scoring_dtype(dtype, backend.device), resolve_model(EMBEDDED_MODEL)


def score_candidates(
    task: BenchmarkTask,
    backend: HFBackend,
    model: ResolvedModel,
    dtype: str,
    adapters: Sequence[Path],
    make_lm: Callable[[ModelVariant], LM],
    summarise: Callable[[CandidateRun[LM]], dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, BenchmarkOutcome]]:
    """Score the base, then each adapter; ``summarise`` prints and returns each candidate's figures.

    Returns:
        The figures in order, and the outcomes by candidate (``base``, then each adapter's folder name).
    """
    results: list[dict[str, Any]] = []
    outcomes: dict[str, BenchmarkOutcome] = {}
    for adapter in [None, *adapters]:
        name = adapter.name if adapter else "base"
        variant = ModelVariant(model, adapter=adapter, adapter_name=name if adapter else None, dtype=dtype)
        backend.load(variant)  # the load is not the probe's cost
        lm = make_lm(variant)
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = evaluate_benchmark(task, lm)
        outcomes[name] = outcome
        results.append(summarise(CandidateRun(f"{name} (hf, {dtype})", lm, outcome, time.perf_counter() - started,
                                              time.process_time() - cpu_started)))
    return results, outcomes


def genre_figures(label: str, outcome: BenchmarkOutcome, seconds: float, count_key: str,
                  score_key: str) -> dict[str, Any]:
    """Return (and print) one candidate's figures on a probe scored per genre.

    ``count_key`` names the number of items scored and ``score_key`` the mean per-item score.
    """
    return print_figures({
        "candidate": label,
        count_key: len(outcome.items),
        score_key: round(outcome.acc, 4),
        **{f"lm_eval_{k}": round(v, 4) for k, v in outcome.lm_eval_scores.items()},
        "genres": {genre: round(score.acc, 4) for genre, score in outcome.subjects.items()},
        "seconds": round(seconds, 1),
    })


def paired_with_base(outcomes: dict[str, BenchmarkOutcome]) -> Iterator[tuple[str, list[str], Any, Any]]:
    """Yield each adapter's name, the item ids, and the base's and the adapter's per-item values in that order."""
    base = outcomes["base"]
    ids = sorted(base.items)
    for name, outcome in outcomes.items():
        if name != "base":
            yield name, ids, np.array([base.items[i] for i in ids]), np.array([outcome.items[i] for i in ids])


def print_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """Print ``figures`` as one JSON line and return them."""
    print(json.dumps(figures), flush=True)
    return figures


def write_results(path: Path | None, results: list[dict[str, Any]]) -> None:
    """Write every line of figures to ``path`` as one JSON list (nothing when no path was given)."""
    if path:
        path.write_text(json.dumps(results, indent=2))
