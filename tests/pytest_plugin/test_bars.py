"""Bars: parsing the suite's `bars:` section and checking bars against runs built in code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.bars.evaluate import (
    BarResult,
    BarSpec,
    evaluate_bar,
    evaluate_bars,
    failed_gates,
    parse_bar_expression,
    record_bars,
)
from evalkit.checks import Score
from evalkit.cli import main
from evalkit.comparison.compare import compare_candidates
from evalkit.errors import ConfigError
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.suite.config import load_suite


def candidate(name: str, scores: dict[str, list[float]]) -> CandidateResult:
    """A candidate whose item i scored ``scores[metric][i]`` on each metric."""
    result = CandidateResult(name=name)
    for i in range(len(next(iter(scores.values())))):
        item = ItemResult(item_id=f"item-{i}", fields={}, prompt="p", expected="e", prediction=f"answer {i}")
        for metric, values in scores.items():
            item.scores[metric] = Score(values[i], "" if values[i] >= 1.0 else f"wrong on {i}")
        result.items.append(item)
    return result


def run_of(*candidates: CandidateResult) -> RunResult:
    return RunResult(run_id="r1", suite_name="s", suite_path="s.yaml", baseline="base",
                     candidates=list(candidates), started_at="now")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("exact_match >= 0.80", ("threshold", "exact_match", ">=", 0.8, None)),
        ("json_valid == 1.0", ("threshold", "json_valid", "==", 1.0, None)),
        ("exact_match >= 80%", ("threshold", "exact_match", ">=", 0.8, None)),
        ("field_accuracy.severity<0.5", ("threshold", "field_accuracy.severity", "<", 0.5, None)),
        ("judge.classifier_quality.format >= 4.0", ("threshold", "judge.classifier_quality.format", ">=", 4.0, None)),
        ("mmlu_mini max_drop 3%", ("max_drop", "mmlu_mini", None, None, "3%")),
        ("mmlu_mini  max_drop 2pt", ("max_drop", "mmlu_mini", None, None, "2pt")),
        ("no significant regression on exact_match", ("no_regression", "exact_match", None, None, None)),
        ("no significant regression", ("no_regression", None, None, None, None)),
    ],
)
def test_expressions_parse(expression: str, expected: tuple[object, ...]) -> None:
    parsed = parse_bar_expression(expression)
    assert (parsed["kind"], parsed["metric"], parsed["op"], parsed["value"], parsed["max_drop"]) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("exact_match => 0.8", "cannot read bar 'exact_match => 0.8'; write METRIC >= NUMBER"),
        ("exact_match >= high", "cannot read bar"),
        ("mmlu_mini max_drop 3", "threshold '3' is not understood"),
        ("no regression", "cannot read bar 'no regression'"),
    ],
)
def test_bad_expressions_say_how_to_write_a_bar(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bar_expression(expression)


SUITE = """\
name: demo
dataset:
  path: data.jsonl
candidates:
  - name: base
    model: smollm2-135m-instruct
  - name: lora
    model: smollm2-135m-instruct
checks:
  - exact_match
  - regex: {pattern: x, name: has_x}
bars:
  - lora: exact_match >= 0.80
  - lora: has_x == 1.0
"""


def test_suite_bars_load_as_specs(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE + "  - lora: no significant regression\n")
    bars = load_suite(tmp_path / "suite.yaml").bars
    assert [b.label for b in bars] == [
        "lora: exact_match >= 0.80", "lora: has_x == 1.0", "lora: no significant regression",
    ]
    assert bars[0] == BarSpec.of("lora", "exact_match >= 0.80")
    assert BarSpec.model_validate(bars[0].model_dump()) == bars[0]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - lorra: exact_match >= 0.8", "suite.yaml:15: bars.2: no candidate named 'lorra'; choose one of base, lora"),
        ("  - base: exact_match max_drop 3%", "suite.yaml:15: bars.2: .*'base' is the baseline; put the bar on another"),
        ("  - lora: exact_mach >= 0.8", "suite.yaml:15: bars.2: no check, judge or benchmark measures 'exact_mach'; "
                                        "measured: exact_match, has_x, regex"),
        ("  - lora: exact_match => 0.8", "suite.yaml:15: bars.2: cannot read bar 'exact_match => 0.8'"),
        ("  - exact_match >= 0.8", "suite.yaml:15: bars.2: write a bar as `- CANDIDATE: EXPRESSION`"),
        ("  - lora: 0.8", "suite.yaml:15: bars.2: the bar for 'lora' must be a text expression"),
    ],
)
def test_bad_bars_fail_at_load_naming_line_and_field(tmp_path: Path, entry: str, message: str) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE + entry + "\n")
    with pytest.raises(ConfigError, match=message):
        load_suite(tmp_path / "suite.yaml")


def test_threshold_bar_fails_with_value_interval_baseline_and_worst_items() -> None:
    run = run_of(candidate("base", {"exact_match": [1, 1, 1, 0, 0]}),
                 candidate("lora", {"exact_match": [1, 0, 1, 0, 1]}))
    result = evaluate_bar(BarSpec.of("lora", "exact_match >= 0.80"), run)
    assert result.failed and result.value == pytest.approx(0.6)
    assert result.interval == pytest.approx((0.231, 0.882), abs=1e-3)  # Wilson 95% for 3/5
    text = result.explain()
    assert text.splitlines()[0] == "exact_match = 0.600, needs >= 0.800 (short by 0.200)"
    assert "interval:  95% [0.231, 0.882]" in text and "baseline:  base = 0.600" in text
    assert "    item-1: 0.000 — wrong on 1 — answer 'answer 1'" in text
    assert [i.item_id for i in result.worst_items] == ["item-1", "item-3"]


def test_threshold_bar_passes_and_equality_tolerates_rounding() -> None:
    run = run_of(candidate("base", {"m": [0.1] * 3}), candidate("lora", {"m": [0.1, 0.2, 0.3]}))
    assert evaluate_bar(BarSpec.of("lora", "m == 0.2"), run).passed
    assert evaluate_bar(BarSpec.of("lora", "m > 0.2"), run).failed


def test_judge_bar_lists_low_scores_worst_first_and_is_not_counted_when_uncalibrated() -> None:
    metric = "judge.quality.format"
    run = run_of(candidate("base", {metric: [3, 3, 3]}), candidate("lora", {metric: [3, 5, 2]}))
    result = evaluate_bar(BarSpec.of("lora", f"{metric} >= 4.0"), run)
    assert result.failed and [i.item_id for i in result.worst_items] == ["item-2", "item-0"]
    assert result.interval == pytest.approx((-0.461, 7.128), abs=1e-3)  # Student t, 2 degrees of freedom
    run.sections["judges"] = {"quality": {"calibration": {"kappa": {"format": 0.1}, "calibrated": False,
                                                          "min_kappa": 0.4}}}
    result = evaluate_bar(BarSpec.of("lora", f"{metric} >= 4.0"), run)
    assert result.status == "not_counted"
    assert "judge 'quality' is not calibrated against human labels (kappa 0.100 for 'format' < min_kappa 0.400)" \
        in result.explain()


def test_an_uncalibrated_judge_neither_fails_nor_blocks_the_regression_bar_or_the_verdict() -> None:
    from evalkit.bars.verdict import run_verdict

    metric = "judge.quality.format"
    # The judge's format score collapses (a regression the comparison sees); exact match improves.
    run = run_of(candidate("base", {metric: [5.0] * 60, "exact_match": [0.0] * 60}),
                 candidate("lora", {metric: [1.0] * 60, "exact_match": [1.0] * 60}))
    comparison = compare_candidates(run)
    assert comparison.candidates["lora"].metrics[metric].verdict == "regressed"
    bar = BarSpec.of("lora", "no significant regression")
    assert evaluate_bar(bar, run, comparison).status == "failed"
    run.sections["comparison"] = comparison.to_dict()
    assert run_verdict(run).exit_code == 1
    # Uncalibrated: its scores decide nothing, the bar and the run's verdict included.
    run.sections["judges"] = {"quality": {"calibration": {"kappa": {"format": 0.0}, "calibrated": False,
                                                          "min_kappa": 0.4}}}
    result = evaluate_bar(bar, run, comparison)
    assert result.status == "passed", result.message
    assert f"{metric} left out: their judge's scores do not count" in result.message
    assert run_verdict(run).candidates[-1].regressions == []


@pytest.mark.parametrize(("threshold", "status"), [("3%", "failed"), ("20%", "passed"), ("11%", "inconclusive"),
                                                   ("5pt", "failed"), ("15pt", "passed")])
def test_max_drop_bar_fails_passes_or_is_inconclusive_by_its_interval(threshold: str, status: str) -> None:
    # 40 of 400 items lost: a drop of 0.100 whose 95% interval is about [-0.13, -0.07].
    run = run_of(candidate("base", {"acc": [1.0] * 400}), candidate("lora", {"acc": [1.0] * 360 + [0.0] * 40}))
    result = evaluate_bar(BarSpec.of("lora", f"acc max_drop {threshold}"), run, compare_candidates(run))
    assert result.status == status
    assert result.baseline_value == 1.0 and result.value == pytest.approx(0.9)
    assert "acc went 1.000 -> 0.900 (-0.100, -10.0% relative): " in result.message
    assert result.interval is not None and -0.14 < result.interval[0] < result.interval[1] < -0.06
    assert result.blocks == (status != "passed")
    if status == "inconclusive":
        assert result.items_needed is not None and result.items_needed > 400
        assert "INCONCLUSIVE" in result.explain() and "fails the gate" in result.explain()
    if status != "passed":
        assert result.worst_items[0].describe() == "item-360: 1.000 -> 0.000 — wrong on 360 — answer 'answer 360'"


def test_small_drop_on_ten_items_is_inconclusive_not_failed() -> None:
    # One of ten lost: 10% on the point estimate, but ten items cannot show a drop beyond 3%.
    run = run_of(candidate("base", {"acc": [1.0] * 10}), candidate("lora", {"acc": [1.0] * 9 + [0.0]}))
    result = evaluate_bar(BarSpec.of("lora", "acc max_drop 3%"), run, compare_candidates(run))
    assert result.status == "inconclusive"
    # A stored record says blocks: true; read back under inconclusive: warn it is decided again.
    warned = BarResult.model_validate({**result.model_dump(mode="json"), "inconclusive_policy": "warn"})
    assert result.blocks and not warned.blocks and warned.policy == "warn"
    assert "does not gate" in warned.explain()


def test_no_significant_regression_uses_the_comparison_verdict() -> None:
    # 300 identical items are enough to show `other` did not drop 3% (60 would not be).
    base = candidate("base", {"exact_match": [1.0] * 300, "other": [1.0] * 300})
    worse = candidate("lora", {"exact_match": [1.0] * 100 + [0.0] * 200, "other": [1.0] * 300})
    run = run_of(base, worse)
    results = evaluate_bars([BarSpec.of("lora", "no significant regression on other"),
                             BarSpec.of("lora", "no significant regression")], run)
    assert [r.status for r in results] == ["passed", "failed"]
    assert results[1].message == "regression beyond the allowed drop on exact_match against 'base'"
    assert "exact_match: vs baseline: delta -0.667, mcnemar test, verdict regressed" in results[1].explain()
    assert len(results[1].worst_items) == 5 and results[1].worst_items[0].baseline_value == 1.0


def test_bars_on_unmeasured_things_fail_and_say_why() -> None:
    # Only a candidate the suite lets be missing is ever skipped: its bars never count (nor pass).
    skipped = CandidateResult(name="lora", status="skipped", message="adapter x not found; make it with y")
    run = run_of(candidate("base", {"exact_match": [1.0]}), skipped)
    outcome = evaluate_bar(BarSpec.of("lora", "exact_match >= 0.5"), run)
    assert (outcome.status, outcome.passed, outcome.blocks) == ("not_counted", False, False)
    assert outcome.message == "candidate 'lora' was not evaluated: adapter x not found; make it with y"
    run = run_of(candidate("base", {"exact_match": [1.0]}), candidate("lora", {"exact_match": [1.0]}))
    assert evaluate_bar(BarSpec.of("lora", "json_valid >= 0.5"), run).message == (
        "'json_valid' was not measured for 'lora'; measured: exact_match")


def test_recorded_bars_round_trip_and_make_the_gate_fail(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    suite = load_suite(tmp_path / "suite.yaml")
    run = run_of(candidate("base", {"exact_match": [1.0, 0.0], "has_x": [1.0, 1.0]}),
                 candidate("lora", {"exact_match": [1.0, 0.0], "has_x": [1.0, 1.0]}))
    results = record_bars(suite, run)
    records = json.loads(json.dumps(run.sections["bars"]))
    assert [(r["candidate"], r["expression"], r["passed"]) for r in records] == [
        ("lora", "exact_match >= 0.80", False), ("lora", "has_x == 1.0", True)]
    assert [BarResult.model_validate(r) for r in records] == results  # the stored form is the whole result
    assert [BarResult.model_validate(r).explain() for r in records] == [r.explain() for r in results]
    assert failed_gates(run) == ["bar lora: exact_match >= 0.80: exact_match = 0.500, needs >= 0.800 (short by 0.300)"]


def test_cli_run_exits_1_when_a_bar_fails(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    path = make_suite(candidates=[{"name": "base", "model": str(tiny_model_dir)}],
                      bars=[{"base": "exact_match >= 0.5"}, {"base": "exact_match >= 0.0"}])
    assert main(["run", str(path)]) == 1
    summary = json.loads(next(path.parent.parent.glob("reports/tiny/*/summary.json")).read_text())
    assert [b["status"] for b in summary["sections"]["bars"]] == ["failed", "passed"]
