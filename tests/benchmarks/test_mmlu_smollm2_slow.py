"""The real SmolLM2 on a small mmlu_mini slice: evalkit's path agrees with lm-eval's `hf` model."""

from __future__ import annotations

from typing import Any

import pytest
from lm_eval.models.huggingface import HFLM

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.benchmarks.stage import run_benchmarks
from evalkit.errors import BenchmarkError
from evalkit.models.backend import Backend, ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateResult, RunResult
from evalkit.runner import load_inputs
from evalkit.suite.config import load_suite

pytestmark = pytest.mark.slow

# Short questions, so the slice costs seconds: 6 questions, 24 scored choices.
SLICE = {"subjects": ["high_school_geography", "marketing"], "limit_per_subject": 3}


@pytest.mark.parametrize("task", ["mmlu_mini", "mmlu_mini_cloze"])
def test_same_answers_as_lm_eval_hf(
    task: str, smollm2_backend: HFBackend, smollm2_variant: ModelVariant, tmp_path: Any
) -> None:
    prepared = prepare_benchmark(BenchmarkSpec(task=task, **SLICE), tmp_path)
    ours = evaluate_benchmark(prepared, EvalkitLM(smollm2_backend, smollm2_variant))
    loaded = smollm2_backend.load(smollm2_variant)
    reference = evaluate_benchmark(prepared, HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer,
                                                  batch_size=16, device="cpu"))
    assert len(ours.items) == 6 and ours.items.keys() == reference.items.keys()
    assert ours.items == reference.items, "per-item answers agree exactly on this slice (fp32 both)"
    assert ours.acc == pytest.approx(reference.acc)
    assert ours.metric == ("acc" if task == "mmlu_mini" else "acc_norm")


def test_stage_on_smollm2(make_suite: Any) -> None:
    suite = load_suite(make_suite(
        candidates=[{"name": "base", "model": "smollm2-135m-instruct"}],
        benchmarks=[{"task": "mmlu_mini", **SLICE}],
    ))
    run = RunResult("r", "s", "", "base", [CandidateResult("base")], "now")
    backends: dict[str, Backend] = {}
    run_benchmarks(load_inputs(suite), run, backends, SilentProgress())
    entry = run.sections["benchmarks"]["base"]["mmlu_mini"]
    assert entry["n"] == 6 and set(entry["subjects"]) == set(SLICE["subjects"])
    assert 0.0 <= entry["acc"] <= 1.0 and entry["stderr"] > 0
    assert len(run.candidate("base").item_values["mmlu_mini"]) == 6
    assert "hf" in backends, "the stage made an HF backend when generation had none"
    backends["hf"].close()


def test_unknown_task_says_what_is_available(tmp_path: Any) -> None:
    # Slow only because lm-eval indexes its ~15,000 task files to know a name is unknown.
    with pytest.raises(BenchmarkError, match=r"unknown benchmark task 'mmlu_mni'; did you mean evalkit_mmlu_mini.*"
                                             r"Available: evalkit_mmlu, evalkit_mmlu_cloze, evalkit_mmlu_mini, "
                                             r"evalkit_mmlu_mini_cloze.*include_path"):
        prepare_benchmark(BenchmarkSpec(task="mmlu_mni"), tmp_path)
