"""Verdicts, thresholds, flips and the `evalkit compare` / `evalkit history` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.checks import Score
from evalkit.cli import main
from evalkit.comparison.compare import compare_candidates, compare_runs
from evalkit.comparison.result import Threshold, ThresholdPolicy
from evalkit.errors import ConfigError
from evalkit.record.results import CandidateResult, ItemResult, RunResult, comparison_section
from evalkit.store import RunStore
from evalkit.store.runs import metric_trends
from evalkit.suite.config import load_suite


def candidate(name: str, metrics: dict[str, list[float | None]]) -> CandidateResult:
    """A candidate whose item i has metrics[m][i] (None: no score for that item)."""
    n = len(next(iter(metrics.values())))
    items = []
    for index in range(n):
        scores = {m: Score(float(v)) for m, values in metrics.items() if (v := values[index]) is not None}
        items.append(ItemResult(item_id=f"item-{index}", fields={}, prompt="p", expected="e", prediction="x",
                                scores=scores))
    return CandidateResult(name=name, items=items)


def run_of(*candidates: CandidateResult, run_id: str = "r1", baseline: str = "base") -> RunResult:
    return RunResult(run_id=run_id, suite_name="demo", suite_path="", baseline=baseline,
                     candidates=list(candidates), started_at="2026-11-28T10:00:00+00:00")


def pass_fail(n: int, rate: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(float)


def test_planted_regression_is_flagged_with_its_flips() -> None:
    base = pass_fail(2000, 0.85, seed=1)
    cand = base.copy()
    passing = np.flatnonzero(base == 1)
    planted = np.random.default_rng(2).choice(passing, size=160, replace=False)  # ~9.4% of passes lost
    cand[planted] = 0
    recovered = np.flatnonzero(base == 0)[:20]
    cand[recovered] = 1
    run = run_of(candidate("base", {"exact_match": list(base)}), candidate("lora", {"exact_match": list(cand)}))
    comparison = compare_candidates(run)
    metric = comparison.candidates["lora"].metrics["exact_match"]
    assert metric.kind == "binary" and metric.test == "mcnemar"
    assert metric.verdict == "regressed"
    assert metric.ci_high < 0 and metric.p_value < 0.001
    assert metric.delta == pytest.approx((20 - 160) / 2000)
    assert sorted(metric.pass_to_fail) == sorted(f"item-{i}" for i in planted)
    assert sorted(metric.fail_to_pass) == sorted(f"item-{i}" for i in recovered)
    assert comparison.regressed and comparison.deployable is None  # not judged: the run's bars decide that
    assert comparison.regressions == [("lora", metric)]
    assert "dropped" in metric.explain() and "3%" in metric.explain()


def test_equal_run_is_not_flagged() -> None:
    values = {"exact_match": list(pass_fail(2000, 0.8, seed=3)), "judge.quality.format": [4.0] * 2000,
              "field_accuracy": list(np.random.default_rng(4).integers(0, 6, 2000) / 5)}
    run = run_of(candidate("base", values), candidate("same", values))
    comparison = compare_candidates(run)
    verdicts = {m: c.verdict for m, c in comparison.candidates["same"].metrics.items()}
    assert verdicts == {"exact_match": "no_change", "judge.quality.format": "no_change",
                        "field_accuracy": "no_change"}
    assert not comparison.regressed
    metric = comparison.candidates["same"].metrics["exact_match"]
    assert (metric.delta, metric.p_value) == (0.0, 1.0)
    # Tango's interval at no discordant pair: +-z^2/(n + z^2), not a collapsed point.
    z2 = 1.959964 ** 2
    assert (metric.ci_low, metric.ci_high) == pytest.approx((-z2 / (2000 + z2), z2 / (2000 + z2)), abs=1e-6)
    assert metric.pass_to_fail == metric.fail_to_pass == []


def test_tiny_eval_set_is_inconclusive_and_says_how_many_items() -> None:
    values = {"exact_match": [1.0, 0.0, 1.0, 1.0, 0.0], "judge.quality.format": [4.0, 3.0, 5.0, 4.0, 4.0],
              "field_accuracy": [0.8, 0.6, 1.0, 1.0, 0.4]}
    run = run_of(candidate("base", values), candidate("same", values))
    metrics = compare_candidates(run).candidates["same"].metrics
    for metric in metrics.values():
        assert metric.verdict == "inconclusive", metric.metric
        assert metric.items_needed is not None and metric.items_needed > 5
    assert metrics["exact_match"].explain().startswith("5 paired items cannot rule out a drop of 3%; ~")


def test_drop_beyond_threshold_without_significance_is_inconclusive() -> None:
    base = [1.0] * 30 + [0.0] * 10
    cand = [1.0] * 27 + [0.0] * 3 + [0.0] * 10  # 3 of 40 lost: 7.5 points, McNemar's z = sqrt(3), p = 0.083
    run = run_of(candidate("base", {"exact_match": base}), candidate("lora", {"exact_match": cand}))
    metric = compare_candidates(run).candidates["lora"].metrics["exact_match"]
    assert metric.verdict == "inconclusive"
    assert metric.p_value == pytest.approx(0.0833, abs=1e-4)
    assert metric.ci_low < 0.0 < metric.ci_high
    assert metric.items_needed is not None and metric.items_needed > 40
    assert "not significant" in metric.explain()


def test_significant_improvement() -> None:
    base = pass_fail(1000, 0.6, seed=5)
    cand = base.copy()
    cand[np.flatnonzero(base == 0)[:150]] = 1
    run = run_of(candidate("base", {"exact_match": list(base)}), candidate("lora", {"exact_match": list(cand)}))
    metric = compare_candidates(run).candidates["lora"].metrics["exact_match"]
    assert metric.verdict == "improved"
    assert metric.relative_delta == pytest.approx(0.15 / base.mean())
    assert len(metric.fail_to_pass) == 150


def test_absolute_and_relative_thresholds_decide_a_significant_small_drop(tmp_path: Path) -> None:
    base = [1.0] * 9000 + [0.0] * 1000  # 0.90
    cand = [1.0] * 8750 + [0.0] * 250 + [0.0] * 1000  # 0.875: a 2.5-point drop, 2.8% relative
    run = run_of(candidate("base", {"exact_match": base}), candidate("lora", {"exact_match": cand}))
    relative = compare_candidates(run, policy=ThresholdPolicy(default="4%")).candidates["lora"].metrics
    absolute = compare_candidates(run, policy=ThresholdPolicy(default="2pt")).candidates["lora"].metrics
    straddled = compare_candidates(run, policy=ThresholdPolicy(default="3%")).candidates["lora"].metrics
    # 95% CI of the delta is about [-0.028, -0.022]: all within 4% (0.036), all beyond 2pt (0.02) ...
    assert relative["exact_match"].verdict == "no_change"
    assert absolute["exact_match"].verdict == "regressed"
    assert absolute["exact_match"].threshold == "2pt"
    # ... and across 3% (0.027): the data cannot say on which side of the threshold the drop lies.
    assert straddled["exact_match"].verdict == "inconclusive"
    assert "reaches" in straddled["exact_match"].explain()


def test_judge_scores_use_wilcoxon_and_pair_only_judged_items() -> None:
    rng = np.random.default_rng(8)
    base_scores = list(rng.integers(3, 6, 600).astype(float))
    cand_scores: list[float | None] = [max(1.0, s - 1) if i % 3 == 0 else s for i, s in enumerate(base_scores)]
    cand_scores[:25] = [None] * 25  # judgments that failed: no score, never a made-up one
    run = run_of(candidate("base", {"judge.quality.format": list(base_scores)}),
                 candidate("lora", {"judge.quality.format": cand_scores}))
    metric = compare_candidates(run).candidates["lora"].metrics["judge.quality.format"]
    assert (metric.kind, metric.test, metric.n_items) == ("judge", "wilcoxon", 575)
    assert metric.verdict == "regressed"
    assert metric.pass_to_fail == []


def test_benchmark_item_values_are_compared_like_any_metric() -> None:
    base, lora = CandidateResult(name="base"), CandidateResult(name="lora")
    base.item_values["mmlu_mini"] = {f"anatomy/{i}": float(i % 4 == 0) for i in range(400)}
    lora.item_values["mmlu_mini"] = {f"anatomy/{i}": float(i % 4 == 0 and i % 8 != 0) for i in range(400)}
    comparison = compare_candidates(run_of(base, lora))
    metric = comparison.candidates["lora"].metrics["mmlu_mini"]
    assert metric.kind == "binary" and metric.verdict == "regressed"
    assert len(metric.pass_to_fail) == 50


def test_threshold_precedence_from_the_suite(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: demo\ndataset: {path: data.jsonl}\n"
        "candidates: [{name: base, model: smollm2-135m-instruct}]\n"
        "max_drop: 5%\n"
        "benchmarks: [{task: mmlu_mini, max_drop: 4pt}]\n"
        "thresholds: {exact_match: 1pt, 'field_accuracy.*': 2%, 'field_accuracy.severity': 0pt}\n"
    )
    policy = ThresholdPolicy.from_suite(load_suite(tmp_path / "suite.yaml"))
    assert policy.threshold_text("exact_match") == "1pt"
    assert policy.threshold_text("field_accuracy.category") == "2%"
    assert policy.threshold_text("field_accuracy.severity") == "0pt"
    assert policy.threshold_text("mmlu_mini") == "4pt"
    assert policy.threshold_text("json_valid") == "5%"
    assert ThresholdPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


@pytest.mark.parametrize(("text", "relative", "allowed"), [("3%", True, 0.024), ("2pt", False, 0.02),
                                                           ("0.5 %", True, 0.004), ("0pt", False, 0.0)])
def test_threshold_parse(text: str, relative: bool, allowed: float) -> None:
    threshold = Threshold.parse(text)
    assert threshold.relative is relative
    assert threshold.allowed_drop(0.8) == pytest.approx(allowed)


@pytest.mark.parametrize("text", ["3", "three%", "-2pt", "2 points", "150%"])
def test_bad_threshold_text(text: str) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Threshold.parse(text)


@pytest.mark.parametrize(("yaml_line", "field"), [("max_drop: 3 percent", "max_drop"),
                                                  ("thresholds: {exact_match: 2}", "thresholds.exact_match")])
def test_bad_threshold_in_suite_names_line_and_field(tmp_path: Path, yaml_line: str, field: str) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: demo\ndataset: {path: data.jsonl}\ncandidates: [{name: base, model: smollm2-135m-instruct}]\n"
        f"{yaml_line}\n")
    with pytest.raises(ConfigError, match=rf"suite.yaml:4: {field}: .*'3%'.*'2pt'"):
        load_suite(tmp_path / "suite.yaml")


def test_comparison_round_trips_through_json() -> None:
    base = pass_fail(300, 0.7, seed=9)
    cand = np.where(np.arange(300) % 10 == 0, 0.0, base)
    run = run_of(candidate("base", {"exact_match": list(base)}), candidate("lora", {"exact_match": list(cand)}))
    comparison = compare_candidates(run, seed=3)
    data = json.loads(json.dumps(comparison.to_dict()))
    # Not judged against bars (the run stage's comparison): no deployable claim either way.
    assert data["regressed"] == comparison.regressed and "deployable" not in data
    assert comparison_section({"comparison": data}) == comparison
    judged = compare_runs(run, run)  # across runs: each candidate judged by the candidate run's bars (none)
    data = json.loads(json.dumps(judged.to_dict()))
    assert data["candidates"]["lora"]["status"] == "no_bars" and data["candidates"]["lora"]["deployable"] is False
    assert data["deployable"] is False
    assert comparison_section({"comparison": data}) == judged


def test_skipped_baseline_compares_nothing_and_says_why() -> None:
    skipped = CandidateResult(name="base", status="skipped", message="adapter missing")
    comparison = compare_candidates(run_of(skipped, candidate("lora", {"exact_match": [1.0]})))
    assert comparison.candidates == {}
    assert "adapter missing" in comparison.notes[0]


def test_run_without_its_baseline_compares_nothing() -> None:
    comparison = compare_candidates(run_of(candidate("lora", {"exact_match": [1.0]})))
    assert comparison.candidates == {} and "'base' was not run" in comparison.notes[0]
    with pytest.raises(ConfigError, match="no candidate 'ghost'"):
        compare_candidates(run_of(candidate("lora", {"exact_match": [1.0]})), baseline="ghost")


def test_compare_runs_pairs_candidates_by_name_across_runs() -> None:
    old = run_of(candidate("base", {"exact_match": [1.0] * 500}), candidate("lora", {"exact_match": [1.0] * 500}),
                 run_id="old")
    new = run_of(candidate("lora", {"exact_match": [1.0] * 400 + [0.0] * 100}), run_id="new")
    new.dataset_hash, old.dataset_hash = "b", "a"
    comparison = compare_runs(old, new)
    assert list(comparison.candidates) == ["lora"]
    assert comparison.candidates["lora"].metrics["exact_match"].verdict == "regressed"
    assert (comparison.baseline_run_id, comparison.candidate_run_id) == ("old", "new")
    assert "different dataset" in comparison.notes[0]
    across = compare_runs(old, new, baseline="base", candidate="lora")
    assert across.candidates["lora"].baseline == "base"
    with pytest.raises(ConfigError, match="share no evaluated candidate"):
        compare_runs(old, run_of(candidate("other", {"exact_match": [1.0]}), run_id="x"))


def test_metric_trends_flag_drift_against_first_and_best() -> None:
    points = [("r1", "lora", "exact_match", 0.80), ("r2", "lora", "exact_match", 0.90),
              ("r3", "lora", "exact_match", 0.85), ("r1", "lora", "json_valid", 1.0),
              ("r2", "lora", "json_valid", 0.99), ("r3", "lora", "json_valid", 0.90)]
    trends = {t.metric: t for t in metric_trends(points, ThresholdPolicy(default="3%"))}
    exact, valid = trends["exact_match"], trends["json_valid"]
    assert (exact.drifted_from_first, exact.drifted_from_best, exact.best_run_id) == (False, True, "r2")
    assert exact.drift_from_best == pytest.approx(-0.05)
    assert (valid.drifted_from_first, valid.drifted_from_best) == (True, True)


def save_runs(store_path: Path, *runs: RunResult) -> None:
    with RunStore(store_path) as store:
        for run in runs:
            store.save_run(run)


def test_compare_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "runs.db"
    good = [1.0] * 900 + [0.0] * 100
    worse = [1.0] * 800 + [0.0] * 200
    save_runs(store,
              run_of(candidate("base", {"exact_match": good}), candidate("lora", {"exact_match": good}),
                     run_id="week1"),
              run_of(candidate("base", {"exact_match": good}), candidate("lora", {"exact_match": worse}),
                     run_id="week2"))
    assert main(["compare", "week1", "week2", "--store", str(store), "--candidate", "base"]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["compare", "week1", "week2", "--store", str(store)]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "pass->fail (100)" in out
    # Within one run: lora against the run's baseline.
    assert main(["compare", "week2", "--candidate", "lora", "--store", str(store), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["candidates"]["lora"]["metrics"]["exact_match"]["verdict"] == "regressed"
    assert main(["compare", "week1", "--candidate", "lora", "--store", str(store)]) == 0
    assert main(["compare", "nope", "week2", "--store", str(store)]) == 2
    assert "'nope' is neither a run id" in capsys.readouterr().err
    assert main(["compare", "week1", "week2", "--candidate", "ghost", "--store", str(store)]) == 2


def test_history_command_shows_trends_and_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "runs.db"
    rates = [0.9, 0.92, 0.8]
    runs = []
    for number, rate in enumerate(rates, start=1):
        values = [1.0] * int(rate * 100) + [0.0] * (100 - int(rate * 100))
        run = run_of(candidate("lora", {"exact_match": values}), run_id=f"run{number}", baseline="lora")
        run.started_at = f"2026-11-2{number}T10:00:00+00:00"
        runs.append(run)
    save_runs(store, *runs)
    assert main(["history", "demo", "--store", str(store), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["runs"]] == ["run1", "run2", "run3"]
    (trend,) = data["trends"]
    assert trend["values"] == pytest.approx(rates)
    assert trend["drifted"] and trend["best_run_id"] == "run2"
    assert main(["history", "demo", "--store", str(store)]) == 0
    assert "drift" in capsys.readouterr().out
    assert main(["history", "other", "--store", str(store)]) == 2
    assert "suites stored: demo" in capsys.readouterr().err


def test_compare_accepts_run_directories_with_and_without_a_store(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.record.run_dir import write_run

    good, worse = [1.0] * 900 + [0.0] * 100, [1.0] * 800 + [0.0] * 200
    week1 = run_of(candidate("base", {"exact_match": good}), candidate("lora", {"exact_match": good}),
                   run_id="week1")
    week2 = run_of(candidate("base", {"exact_match": good}), candidate("lora", {"exact_match": worse}),
                   run_id="week2")
    dirs = [str(write_run(run, tmp_path / "reports")) for run in (week1, week2)]
    # No store at all: both runs come from their files.
    assert main(["compare", *dirs, "--store", str(tmp_path / "absent.db")]) == 1
    assert "lora vs lora" in capsys.readouterr().out
    # A store that holds the runs: the directories resolve to the stored runs.
    save_runs(tmp_path / "runs.db", week1, week2)
    assert main(["compare", dirs[0], "week2", "--store", str(tmp_path / "runs.db"), "--candidate", "base"]) == 0
    assert main(["compare", str(tmp_path), "--store", str(tmp_path / "runs.db")]) == 2
    assert "neither a run id" in capsys.readouterr().err
