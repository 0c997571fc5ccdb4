"""The gate on a lower-is-better metric: bits per byte rising is the regression, declared, not guessed.

Per-document values are planted (real corpus ids, a plausible spread of bits per byte),
and the real comparison, bars and verdict decide; the direction comes from the run's
``metric_kinds`` section, as the benchmarks stage writes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.bars.evaluate import evaluate_bars
from evalkit.bars.spec import BarSpec, parse_bar_expression
from evalkit.bars.verdict import run_verdict
from evalkit.benchmarks.probes import load_corpus
from evalkit.benchmarks.stage import describe_drop, drop_summary
from evalkit.comparison.compare import compare_candidates
from evalkit.comparison.paired import compare_metric, detectable_drop
from evalkit.record.results import CandidateResult, RunResult, RunSections
from evalkit.record.sections import parse_section

METRIC = "general_text"
LOWER_IS_BETTER = {METRIC: {"kind": "continuous", "higher_is_better": False}}


def _base() -> dict[str, float]:
    rng = np.random.default_rng(7)
    return {d.id: float(v) for d, v in zip(load_corpus(), rng.uniform(0.8, 1.4, len(load_corpus())), strict=True)}


def _run(base: dict[str, float], candidate: dict[str, float], declared: bool = True) -> RunResult:
    candidates = [CandidateResult("base", item_values={METRIC: base}),
                  CandidateResult("lora", item_values={METRIC: candidate})]
    run = RunResult("r", "suite", "suite.yaml", "base", candidates, "now")
    if declared:
        run.sections["metric_kinds"] = dict(LOWER_IS_BETTER)
    return run


def _bar(run: RunResult) -> tuple[str, str]:
    spec = BarSpec(candidate="lora", expression=f"{METRIC} max_drop 3%", **parse_bar_expression(f"{METRIC} max_drop 3%"))
    (result,) = evaluate_bars([spec], run)
    return result.status, result.message


def test_higher_bits_per_byte_fails_the_gate() -> None:
    base = _base()
    worse = {i: v * 1.10 + 0.01 * (hash(i) % 3) for i, v in base.items()}  # about +10%, beyond 3%
    run = _run(base, worse)
    metric = compare_candidates(run).candidates["lora"].metrics[METRIC]
    assert metric.higher_is_better is False and metric.delta > 0
    assert metric.verdict == "regressed"
    assert "rose (lower is better)" in metric.explain()
    status, message = _bar(run)
    assert status == "failed" and "lower is better" in message
    run.sections["comparison"] = compare_candidates(run).to_dict()
    verdict = run_verdict(run)
    assert not verdict.passed and any(METRIC in line for line in verdict.failures)
    parse_section(RunSections, run.sections, "sections")  # the section round-trips with its direction


def test_lower_bits_per_byte_is_an_improvement_that_ignoring_the_direction_would_fail() -> None:
    base = _base()
    better = {i: v * 0.90 for i, v in base.items()}  # -10%: the candidate models the text better
    declared = compare_candidates(_run(base, better)).candidates["lora"].metrics[METRIC]
    assert declared.verdict == "improved" and declared.gain > 0
    assert _bar(_run(base, better))[0] == "passed"
    # The same numbers read as higher-is-better (no declaration): a 10% drop, a regression.
    undeclared = compare_candidates(_run(base, better, declared=False)).candidates["lora"].metrics[METRIC]
    assert undeclared.verdict == "regressed"


def test_an_unchanged_model_passes_decided() -> None:
    base = _base()
    metric = compare_candidates(_run(base, dict(base))).candidates["lora"].metrics[METRIC]
    # No spread at all on a measurement (not whole items flipping): 60 documents decide it.
    assert metric.verdict == "no_change" and metric.items_needed is None


def test_a_small_rise_within_the_threshold_passes() -> None:
    base = _base()
    slightly = {i: v * 1.01 for i, v in base.items()}
    metric = compare_candidates(_run(base, slightly)).candidates["lora"].metrics[METRIC]
    assert metric.verdict == "no_change"
    assert _bar(_run(base, slightly))[0] == "passed"


def test_drop_summary_lists_genres_that_rose_worst_first() -> None:
    base = {"acc": 1.0, "subjects": {"essay": {"acc": 1.0, "n": 24}, "dialogue": {"acc": 1.2, "n": 24}}}
    lora = {"acc": 1.1, "subjects": {"essay": {"acc": 0.98, "n": 24}, "dialogue": {"acc": 1.5, "n": 24}}}
    summary = drop_summary("base", base, lora, "3%", higher_is_better=False)
    assert [d.subject for d in summary.worst_subjects] == ["dialogue"]  # essay improved: not listed
    assert summary.higher_is_better is False
    line = describe_drop("lora", METRIC, summary)
    assert line.startswith("lora: general_text 1.000 -> 1.100 (+0.1000, +10.0%, lower is better); worst: dialogue +0.3000")


def test_detectable_drop_says_when_a_set_cannot_decide() -> None:
    # MMLU letter at chance: 570 items cannot see a 3% (0.75pt) drop.
    chance = np.array([1.0 if i % 4 == 0 else 0.0 for i in range(570)])
    smallest = detectable_drop("binary", chance, np.zeros(570))
    rate = chance.mean()
    assert smallest == pytest.approx((1.959964 + 0.841621) * np.sqrt(2 * rate * (1 - rate)) / np.sqrt(570), rel=1e-4)
    ids = [f"q/{i}" for i in range(570)]
    # A candidate guessing at chance on its own (answers not the baseline's): undecided.
    guessing = np.roll(chance, 1)
    compared = compare_metric("mmlu", ids, chance, guessing, "3%", np.random.default_rng(0), kind="binary")
    assert compared.verdict == "inconclusive" and compared.undecidable
    assert "cannot decide 3%" in compared.explain() and "alpha 0.05 two-sided and 80% power" in compared.explain()
