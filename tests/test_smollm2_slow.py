"""The classifier suite on the real embedded SmolLM2-135M-Instruct (a small slice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.api import run_suite
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_classifier_suite_on_smollm2(tmp_path: Path) -> None:
    suite = load_suite(REPO / "suites" / "classifier.yaml")
    suite.dataset.limit = 10
    suite.generation.batch_size = 10
    suite.candidates = [c for c in suite.candidates if c.name in {"base", "base-fewshot"}]
    # Only the task checks: benchmarks and judges have their own slow tests.
    suite.benchmarks = []
    suite.judges = []
    suite.bars = []
    run = run_suite(suite, output_dir=tmp_path)
    base, fewshot = run.candidate("base"), run.candidate("base-fewshot")
    assert len(base.items) == len(fewshot.items) == 10
    assert all(item.prediction for item in base.items), "the real model writes something for every item"
    # The article's advice, measured: a better prompt gets the format right far more often.
    assert fewshot.metrics()["json_valid"] >= base.metrics()["json_valid"] + 0.5
    assert fewshot.metrics()["json_valid"] >= 0.8
    prompt = base.items[0].prompt
    assert prompt.startswith("<|im_start|>system\nYou are a customer support classifier.")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert run.run_dir is not None and (run.run_dir / "report.html").is_file()
