"""The merged model against the adapter it came from, read from the run's own completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from evalkit.parity.checks import MIN_MERGE_AGREEMENT, agreement, record_merge_agreement
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.report.render import render_report
from evalkit.runner import plan_candidates
from evalkit.stages import load_inputs
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl


def _suite(root: Path) -> Path:
    """A suite with base, an adapter on it and the adapter merged (directories only: nothing is loaded)."""
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    adapter = root / "adapters" / "lora"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (root / "adapters" / "merged").mkdir()
    suite: dict[str, Any] = {
        "name": "merge",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [
            {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock"},
            {"name": "lora", "model": "smollm2-135m-instruct", "backend": "mock", "adapter": "../adapters/lora"},
            {"name": "merged", "model": "../adapters/merged", "backend": "mock", "merged_from": "../adapters/lora"},
        ],
        "checks": ["exact_match"],
    }
    path = root / "suites" / "merge.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _candidate(name: str, predictions: list[str]) -> CandidateResult:
    return CandidateResult(name=name, items=[
        ItemResult(item_id=str(i), fields={}, prompt="p", expected="e", prediction=text)
        for i, text in enumerate(predictions, start=1)])


def _run(predictions: dict[str, list[str]]) -> RunResult:
    return RunResult(run_id="r1", suite_name="merge", suite_path="merge.yaml", baseline="base",
                     candidates=[_candidate(n, p) for n, p in predictions.items()], started_at="2026-12-01T00:00:00")


class _Notes(SilentProgress):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


def _stage(tmp_path: Path, predictions: dict[str, list[str]]) -> tuple[RunResult, list[str]]:
    inputs = load_inputs(load_suite(_suite(tmp_path)))
    inputs.plans = {plan.config.name: plan for plan in plan_candidates(inputs)}
    run, progress = _run(predictions), _Notes()
    record_merge_agreement(inputs, run, {}, progress)
    return run, progress.notes


def test_a_merged_model_that_answers_as_its_adapter_is_recorded_and_shown(tmp_path: Path) -> None:
    answers = [f"answer {i}" for i in range(100)]
    run, notes = _stage(tmp_path, {"base": ["x"] * 100, "lora": answers, "merged": list(answers)})
    entry = run.sections["merge_agreement"]["merged"]
    assert (entry["source"], entry["n"], entry["agreeing"], entry["agreement_rate"]) == ("lora", 100, 100, 1.0)
    assert notes == ["merged gave the same completion as lora on 100 of 100 items (100.0%, greedy)"]
    assert run.warnings == []
    html = render_report(run)
    assert "Merged model: merged gave the same completion as lora on 100 of 100 items" in html
    assert "below 99%" not in html


def test_a_merge_that_changes_answers_warns_and_lists_the_items(tmp_path: Path) -> None:
    answers = [f"answer {i}" for i in range(100)]
    merged = list(answers)
    merged[3], merged[50] = "changed", "changed too"
    run, _ = _stage(tmp_path, {"base": ["x"] * 100, "lora": answers, "merged": merged})
    entry = run.sections["merge_agreement"]["merged"]
    assert entry["agreeing"] == 98 and entry["agreement_rate"] < MIN_MERGE_AGREEMENT
    assert [d["item_id"] for d in entry["differing"]] == ["4", "51"]
    assert entry["differing"][0] == {"item_id": "4", "merged": "changed", "source": "answer 3"}
    assert len(run.warnings) == 1 and "98 of 100" in run.warnings[0] and "evalkit parity" in run.warnings[0]
    assert "below 99%" in render_report(run)


def test_one_differing_item_in_a_hundred_is_within_the_allowance(tmp_path: Path) -> None:
    answers = [f"answer {i}" for i in range(100)]
    run, _ = _stage(tmp_path, {"base": ["x"] * 100, "lora": answers, "merged": ["other", *answers[1:]]})
    assert run.sections["merge_agreement"]["merged"]["agreement_rate"] == 0.99
    assert run.warnings == []


def test_nothing_is_recorded_when_the_adapter_did_not_run(tmp_path: Path) -> None:
    run, notes = _stage(tmp_path, {"base": ["x"], "merged": ["y"]})
    assert "merge_agreement" not in run.sections and notes == []


def test_agreement_counts_only_items_both_answered() -> None:
    entry = agreement(_candidate("merged", ["a", "b", "c"]), _candidate("lora", ["a", "z"]))
    assert (entry["n"], entry["agreeing"]) == (2, 1)
    assert agreement(_candidate("merged", ["a"]), _candidate("lora", []))["agreement_rate"] is None
