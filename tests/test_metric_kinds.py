"""Checks declare their metrics' kind when they register; the comparison's test follows it, not the values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.checks import CHECKS, Score, check
from evalkit.comparison.compare import compare_candidates, compare_runs
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.runner import execute_suite
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import write_jsonl

N_ITEMS = 60


def candidate(name: str, metric: str, values: np.ndarray) -> CandidateResult:
    items = [ItemResult(item_id=f"item-{i}", fields={}, prompt="p", expected="e", prediction="x",
                        scores={metric: Score(float(v))}) for i, v in enumerate(values)]
    return CandidateResult(name=name, items=items)


def run_with(metric: str, kinds: dict[str, dict[str, object]] | None, run_id: str = "r1") -> RunResult:
    rng = np.random.default_rng(7)
    base = (rng.random(N_ITEMS) < 0.8).astype(float)
    cand = base.copy()
    cand[np.flatnonzero(base == 1)[:12]] = 0.0  # every value stays 0 or 1
    run = RunResult(run_id=run_id, suite_name="kinds", suite_path="", baseline="base",
                    candidates=[candidate("base", metric, base), candidate("lora", metric, cand)],
                    started_at="2026-12-01T10:00:00+00:00")
    if kinds is not None:
        run.sections["metric_kinds"] = kinds
    return run


def test_a_continuous_metric_that_happens_to_be_all_0_or_1_gets_the_continuous_test() -> None:
    declared = run_with("share", {"share": {"kind": "continuous", "higher_is_better": True}})
    metric = compare_candidates(declared).candidates["lora"].metrics["share"]
    assert (metric.kind, metric.test) == ("continuous", "bootstrap")
    assert metric.pass_to_fail == []  # flips are a pass/fail notion


def test_an_undeclared_all_0_or_1_metric_is_still_pass_fail_by_its_values() -> None:
    metric = compare_candidates(run_with("share", None)).candidates["lora"].metrics["share"]
    assert (metric.kind, metric.test) == ("binary", "mcnemar")
    assert len(metric.pass_to_fail) == 12


def test_an_ordinal_metric_gets_the_rank_test() -> None:
    run = run_with("level", {"level": {"kind": "ordinal", "higher_is_better": True}})
    metric = compare_candidates(run).candidates["lora"].metrics["level"]
    assert (metric.kind, metric.test) == ("ordinal", "wilcoxon")


def test_comparing_two_stored_runs_uses_the_kinds_they_recorded() -> None:
    kinds = {"share": {"kind": "continuous", "higher_is_better": True}}
    older, newer = run_with("share", kinds, "r1"), run_with("share", kinds, "r2")
    metric = compare_runs(older, newer, baseline="base", candidate="lora").candidates["lora"].metrics["share"]
    assert metric.test == "bootstrap"


def test_a_run_records_the_declared_kinds_and_compares_by_them(tmp_path: Path) -> None:
    # One field per reference: the per-item field_accuracy share is then always 0 or 1,
    # yet it is declared continuous, so it must not get McNemar; its per-field metric is pass/fail.
    items = [{"input": f"ticket {i}", "output": json.dumps({"severity": "low"})} for i in range(1, 21)]
    write_jsonl(tmp_path / "data" / "eval.jsonl", items)
    wrong = [{"id": str(line), "output": json.dumps({"severity": "high"})} for line in range(1, 8)]
    write_jsonl(tmp_path / "suites" / "lora.jsonl", wrong)
    (tmp_path / "suites" / "kinds.yaml").write_text(
        "name: kinds\n"
        "dataset: {path: ../data/eval.jsonl}\n"
        "prompt: {user: '{{ input }}', expected: '{{ output }}'}\n"
        "candidates:\n"
        "  - {name: base, model: m, backend: mock}\n"
        "  - {name: lora, model: m, backend: mock, options: {outputs: lora.jsonl}}\n"
        "checks: [exact_match, field_accuracy]\n"
    )
    run = execute_suite(load_suite(tmp_path / "suites" / "kinds.yaml"))
    assert run.sections["metric_kinds"] == {
        "exact_match": {"kind": "binary", "higher_is_better": True},
        "field_accuracy": {"kind": "continuous", "higher_is_better": True},
        "field_accuracy.severity": {"kind": "binary", "higher_is_better": True},
    }
    metrics = run.sections["comparison"]["candidates"]["lora"]["metrics"]
    assert metrics["field_accuracy"]["test"] == "bootstrap"
    assert metrics["field_accuracy.severity"]["test"] == "mcnemar"
    assert metrics["exact_match"]["test"] == "mcnemar"


def test_a_check_must_declare_a_known_kind() -> None:
    with pytest.raises(ValueError, match="kind 'percent' is not one of binary, continuous, ordinal"):
        check("evalkit_test_bad_kind", kind="percent")  # type: ignore[arg-type]
    assert "evalkit_test_bad_kind" not in CHECKS


def test_builtin_checks_declare_their_kinds() -> None:
    declared = {name: CHECKS.get(name).declaration.kind for name in CHECKS.names()}
    assert declared["exact_match"] == "binary" and declared["field_accuracy"] == "continuous"
    assert CHECKS.get("field_accuracy").declaration_for("field_accuracy.severity").kind == "binary"
