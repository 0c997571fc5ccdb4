"""Parity checks: agreement arithmetic, first divergence, no-op adapters, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from vllm_fixtures import shared_hf_backend, shared_vllm_backend, tiny_vllm_models

from evalkit.cli import main
from evalkit.parity.checks import ParityReport, adapter_effect, compare_outputs, first_divergence, run_parity
from evalkit.runner import load_inputs
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [(["a", "b"], ["a", "b"], None), (["a", "b"], ["a", "c"], 1), (["a"], ["a", "b"], 1), ([], ["x"], 0),
     (["x", "y"], ["z"], 0)],
)
def test_first_divergence(left: list[str], right: list[str], expected: int | None) -> None:
    assert first_divergence(left, right) == expected


def test_compare_outputs_counts_agreement_and_names_the_first_diverging_token() -> None:
    comparison = compare_outputs(["a", "b", "c", "d"], ["x y z", "same", "p q", "k"],
                                 ["x y w", "same", "p q r", "k"], str.split)
    assert comparison.agreeing == 2 and comparison.agreement_rate == 0.5
    first, second = comparison.divergences
    assert (first.item_id, first.position, first.left_token, first.right_token) == ("a", 2, "z", "w")
    assert (second.item_id, second.position, second.left_token, second.right_token) == ("c", 2, "", "r")


def test_report_flags_a_no_op_adapter_and_a_low_agreement() -> None:
    report = ParityReport(n_items=4, min_agreement=0.9, backends={}, merged={}, adapters={})
    report.adapters["noop"] = adapter_effect(4, {"hf": 0, "vllm": 0})
    report.adapters["good"] = adapter_effect(4, {"hf": 3, "vllm": 3})
    report.backends["good"] = compare_outputs(["1", "2"], ["a", "b"], ["a", "c"], list)
    problems = report.problems
    assert len(problems) == 2
    assert "'noop' changed no output" in problems[0]
    assert "HF vs vLLM parity for 'good' is 50%" in problems[1]
    assert report.model_dump(mode="json")["adapters"]["noop"]["no_op"] is True


def _suite(tmp_path: Path, candidates: list[dict[str, Any]]) -> Path:
    items = [dict(CLASSIFIER_ITEMS[n % 3], input=f"{CLASSIFIER_ITEMS[n % 3]['input']} #{n}") for n in range(6)]
    write_jsonl(tmp_path / "eval.jsonl", items)
    suite = {
        "name": "parity",
        "dataset": {"path": "eval.jsonl"},
        "prompt": {"user": "{{ instruction }}\n\n{{ input }}"},
        "generation": {"max_new_tokens": 10},
        "candidates": candidates,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.mark.slow
@pytest.mark.vllm
def test_run_parity_flags_the_no_op_adapter_and_compares_merged(tmp_path: Path) -> None:
    models = tiny_vllm_models()
    suite = load_suite(_suite(tmp_path, [
        {"name": "base", "model": str(models.base)},
        {"name": "lora", "model": str(models.base), "adapter": str(models.lora)},
        {"name": "noop", "model": str(models.base), "adapter": str(models.noop)},
        {"name": "merged", "model": str(models.merged), "merged_from": str(models.lora)},
    ]))
    backends: dict[str, Any] = {"hf": shared_hf_backend(), "vllm": shared_vllm_backend()}
    report = run_parity(load_inputs(suite), backends=backends)
    assert report.n_items == 6
    assert set(report.backends) == {"base", "lora", "noop", "merged"}
    assert all(c.agreement_rate >= 5 / 6 for c in report.backends.values())
    assert report.adapters["noop"].no_op and report.adapters["noop"].changed == {"hf": 0, "vllm": 0}
    assert not report.adapters["lora"].no_op and report.adapters["lora"].changed["vllm"] > 0
    assert report.merged["merged"].agreement_rate >= 5 / 6
    assert [p for p in report.problems if "noop" in p] and not [p for p in report.problems if "'lora'" in p]


@pytest.mark.slow
@pytest.mark.vllm
def test_parity_cli_exits_1_on_a_no_op_adapter_and_writes_json(tmp_path: Path) -> None:
    models = tiny_vllm_models()
    suite = _suite(tmp_path, [
        {"name": "base", "model": str(models.base)},
        {"name": "noop", "model": str(models.base), "adapter": str(models.noop)},
    ])
    out = tmp_path / "parity.json"
    assert main(["parity", str(suite), "--limit", "3", "--json", str(out)]) == 1
    section = json.loads(out.read_text())
    assert section["n_items"] == 3
    assert section["adapters"]["noop"]["no_op"] is True
    assert any("noop" in p for p in section["problems"])


def test_parity_cli_rejects_a_bad_limit(tmp_path: Path) -> None:
    suite = _suite(tmp_path, [{"name": "base", "model": str(tmp_path)}])
    assert main(["parity", str(suite), "--limit", "0"]) == 2
