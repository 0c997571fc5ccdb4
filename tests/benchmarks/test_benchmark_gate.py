"""The regression gate on benchmark results: a planted drop is flagged, an equal run passes."""

from __future__ import annotations

from typing import Any

import pytest

from evalkit.benchmarks.mmlu_data import load_mmlu, select_items
from evalkit.benchmarks.stage import describe_drop, drop_summary, subject_drops
from evalkit.comparison.compare import compare_candidates
from evalkit.record.results import CandidateResult, RunResult

SUBJECTS = ["anatomy", "virology", "marketing"]


def _entry(values: dict[str, float]) -> dict[str, Any]:
    by_subject: dict[str, list[float]] = {}
    for item_id, value in values.items():
        by_subject.setdefault(item_id.split("/")[0], []).append(value)
    return {
        "acc": sum(values.values()) / len(values),
        "subjects": {s: {"acc": sum(v) / len(v), "n": len(v)} for s, v in by_subject.items()},
    }


def _run(base: dict[str, float], lora: dict[str, float]) -> RunResult:
    candidates = [CandidateResult("base", item_values={"mmlu": base}), CandidateResult("lora", item_values={"mmlu": lora})]
    return RunResult("r", "suite", "suite.yaml", "base", candidates, "now")


def _base_values() -> dict[str, float]:
    # Real question ids; a plausible 60%-correct baseline, alternating by position.
    ids = [q.id for q in select_items(load_mmlu(), SUBJECTS, 100)]
    return {item_id: 1.0 if n % 5 < 3 else 0.0 for n, item_id in enumerate(ids)}


def test_planted_drop_is_flagged_and_located() -> None:
    base = _base_values()
    # Plant a drop in anatomy only: 30 of its correct answers become wrong.
    flipped = [i for i, v in base.items() if i.startswith("anatomy/") and v == 1.0][:30]
    lora = {i: (0.0 if i in flipped else v) for i, v in base.items()}
    comparison = compare_candidates(_run(base, lora))
    metric = comparison.candidates["lora"].metrics["mmlu"]
    assert metric.verdict == "regressed" and metric.threshold == "3%"
    assert comparison.regressed
    summary = drop_summary("base", _entry(base), _entry(lora), "3%")
    assert summary.delta == pytest.approx(-0.1) and summary.relative_delta == pytest.approx(-0.1 / 0.6)
    (worst,) = summary.worst_subjects  # only subjects that dropped are listed
    assert worst.subject == "anatomy" and worst.n == 100
    assert (worst.baseline_acc, worst.acc, worst.delta) == pytest.approx((0.6, 0.3, -0.3))
    line = describe_drop("lora", "mmlu", summary)
    assert line.startswith("lora: mmlu 0.600 -> 0.500 (-10.0pt, -16.7%); worst: anatomy -30.0pt")


def test_equal_run_passes() -> None:
    base = _base_values()
    comparison = compare_candidates(_run(base, dict(base)))
    assert comparison.candidates["lora"].metrics["mmlu"].verdict != "regressed"
    assert not comparison.regressed
    summary = drop_summary("base", _entry(base), _entry(base), "3%")
    assert summary.delta == 0 and summary.worst_subjects == []


def test_subject_drops_order_largest_first() -> None:
    baseline = {"a": {"acc": 0.5, "n": 4}, "b": {"acc": 0.5, "n": 4}, "c": {"acc": 0.5, "n": 4}}
    candidate = {"a": {"acc": 0.25, "n": 4}, "b": {"acc": 0.75, "n": 4}, "c": {"acc": 0.0, "n": 4}, "d": {"acc": 1, "n": 1}}
    drops = subject_drops(baseline, candidate)
    assert [(d.subject, d.delta) for d in drops] == [("c", -0.5), ("a", -0.25), ("b", 0.25)]
