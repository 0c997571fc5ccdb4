"""evalkit_continuation on the embedded SmolLM2: the model the demo gates is measurably capable on it.

Slow: loads the embedded model (a few seconds) and scores the first 60 items (20 per genre,
240 choices; 93 s with the model load on the shared two-core machine under load). Needed because a probe the base answers at chance (as MMLU's letters) cannot see
a model lose anything: this one must find the real continuation far more often than one
time in four. Measured: 34 of 60 (0.567).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import CONTINUATION_GENRES
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend


@pytest.mark.slow
def test_smollm2_finds_the_real_continuation_well_above_chance(
    smollm2_backend: HFBackend, smollm2_variant: ModelVariant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path))
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_continuation", limit=60), tmp_path)
    outcome = evaluate_benchmark(task, EvalkitLM(smollm2_backend, smollm2_variant, batch_size=16))
    assert len(outcome.items) == 60 and set(outcome.subjects) == set(CONTINUATION_GENRES)
    # Chance is 0.25; at 60 items a model at chance reaches 0.40 (24) with probability 0.7%.
    assert outcome.acc >= 0.4, (outcome.acc, outcome.lm_eval_scores)
    print(f"SmolLM2 on 60 continuation items: acc_norm {outcome.acc:.3f}; lm-eval: {outcome.lm_eval_scores}; "
          f"per genre: { {g: round(s.acc, 3) for g, s in outcome.subjects.items()} }")
