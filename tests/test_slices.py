"""Per-slice comparison: a planted slice regression is found, an equal run flags nothing, Holm is right."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from evalkit.checks import Score
from evalkit.comparison.compare import compare_candidates
from evalkit.comparison.result import ThresholdPolicy
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.slices.compare import compare_slices, holm_adjust, minimum_detectable_effect, sliced_values, slices_section
from evalkit.slices.spec import SliceSpec, field_value, split_sliced_metric

CATEGORIES = ["account_access", "billing", "shipping", "technical", "refund"]


def items_with(categories: list[str], metrics: dict[str, np.ndarray]) -> list[ItemResult]:
    """Items whose output JSON carries a category, scored with the given per-item metrics."""
    return [
        ItemResult(item_id=f"item-{i}", fields={"input": "x" * (20 + 7 * (i % 30)),
                                                "output": json.dumps({"category": category})},
                   prompt="p", expected="e", prediction="x",
                   scores={name: Score(float(values[i])) for name, values in metrics.items()})
        for i, category in enumerate(categories)
    ]


def run_of(base: CandidateResult, cand: CandidateResult) -> RunResult:
    return RunResult(run_id="r1", suite_name="demo", suite_path="", baseline=base.name,
                     candidates=[base, cand], started_at="2026-12-01T10:00:00+00:00")


def planted_run() -> tuple[RunResult, list[str]]:
    """Baseline at ~85% everywhere; the candidate loses billing's labels but gains elsewhere."""
    rng = np.random.default_rng(7)
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(1000)]
    base = (rng.random(1000) < 0.85).astype(float)
    cand = base.copy()
    billing = np.array([c == "billing" for c in categories])
    corrupted = billing & (rng.random(1000) < 0.5)          # half of billing's labels corrupted
    cand[corrupted] = 0.0
    cand[~billing & (base == 0)] = 1.0                      # the other categories fixed
    json_valid = np.ones(1000)
    return run_of(CandidateResult("base", items=items_with(categories, {"exact_match": base,
                                                                         "json_valid": json_valid})),
                  CandidateResult("lora", items=items_with(categories, {"exact_match": cand,
                                                                         "json_valid": json_valid}))), categories


def test_planted_slice_regression_is_flagged_while_the_overall_score_rises() -> None:
    run, _ = planted_run()
    overall = compare_candidates(run).candidates["lora"].metrics["exact_match"]
    assert overall.delta >= 0 and overall.verdict != "regressed"
    slices = compare_slices(run.candidates[0], run.candidates[1], [SliceSpec.model_validate("output.category")],
                            ThresholdPolicy())
    flagged = [(row.comparison.metric, row.value) for row in slices.regressions]
    assert flagged == [("exact_match", "billing")]
    billing = next(r for r in slices.rows if r.value == "billing" and r.comparison.metric == "exact_match")
    assert billing.p_adjusted < 0.05 and billing.comparison.ci_high < 0 and billing.comparison.n_items == 200
    assert billing.sliced_metric == "exact_match[category=billing]"
    # Holm over the family of 5 slices x 2 metrics, checked against statsmodels.
    rejected, expected, _, _ = multipletests([r.comparison.p_value for r in slices.rows], alpha=0.05, method="holm")
    assert [r.p_adjusted for r in slices.rows] == pytest.approx(list(expected), abs=1e-12)
    assert slices.family_size == 10
    assert [r.p_adjusted < 0.05 for r in slices.rows] == list(rejected)


def equal_run(seed: int) -> RunResult:
    """Two candidates of the same quality whose items disagree at random, both ways."""
    rng = np.random.default_rng(seed)
    n = 1500
    categories = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
    metrics_base, metrics_cand = {}, {}
    for metric in ("exact_match", "field_accuracy.category", "field_accuracy.severity"):
        base = (rng.random(n) < 0.7).astype(float)
        cand = base.copy()
        discordant = rng.random(n) < 0.12          # these items disagree, half each way
        up = rng.random(n) < 0.5
        base[discordant], cand[discordant] = np.where(up, 0.0, 1.0)[discordant], np.where(up, 1.0, 0.0)[discordant]
        metrics_base[metric], metrics_cand[metric] = base, cand
    return run_of(CandidateResult("base", items=items_with(categories, metrics_base)),
                  CandidateResult("lora", items=items_with(categories, metrics_cand)))


def test_an_equal_run_flags_nothing_after_holm_correction() -> None:
    run = equal_run(seed=2)
    slices = compare_slices(run.candidates[0], run.candidates[1],
                            [SliceSpec.model_validate("output.category"),
                             SliceSpec.model_validate({"field": "input", "name": "input_length",
                                                       "length_bins": [0, 80, 160]})],
                            ThresholdPolicy(default="2pt"))
    raw = [r.comparison.p_value for r in slices.rows]
    assert min(raw) < 0.05, "the fixed data must hold a chance 'finding' for the correction to remove"
    assert sum(p < 0.05 for p in raw) == 3
    assert slices.regressions == []
    assert all(r.verdict != "improved" for r in slices.rows)
    assert all(r.p_adjusted >= 0.05 for r in slices.rows)
    _, expected, _, _ = multipletests(raw, alpha=0.05, method="holm")
    assert [r.p_adjusted for r in slices.rows] == pytest.approx(list(expected), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed: int) -> None:
    p_values = list(np.random.default_rng(seed).random(23) ** 3)
    p_values[3] = p_values[7]  # ties
    _, expected, _, _ = multipletests(p_values, alpha=0.05, method="holm")
    assert holm_adjust(p_values) == pytest.approx(list(expected), abs=1e-12)


def test_minimum_detectable_effect_shrinks_with_more_items() -> None:
    rng = np.random.default_rng(0)
    small, large = (rng.random(50) < 0.8).astype(float), (rng.random(2000) < 0.8).astype(float)
    mde_small = minimum_detectable_effect("binary", small, small, alpha=0.05)
    mde_large = minimum_detectable_effect("binary", large, large, alpha=0.05)
    assert mde_small is not None and mde_large is not None
    assert mde_large < mde_small < 1
    stricter = minimum_detectable_effect("binary", large, large, alpha=0.005)
    assert stricter is not None and stricter > mde_large
    assert minimum_detectable_effect("binary", small[:1], small[:1], alpha=0.05) is None


def test_section_records_labels_and_sliced_values_for_bars() -> None:
    run, categories = planted_run()
    specs = [SliceSpec.model_validate("output.category")]
    run.set_section("slices", slices_section(run, specs, ThresholdPolicy()))
    assert set(run.sections["slices"]["candidates"]) == {"lora"}
    values = sliced_values(run, run.candidates[1], "exact_match[category=billing]")
    assert len(values) == categories.count("billing")
    assert sum(values.values()) / len(values) < 0.6
    assert sliced_values(run, run.candidates[1], "exact_match[nothing=billing]") == {}


@pytest.mark.parametrize(("entry", "fields", "label"), [
    ("category", {"category": "billing"}, "billing"),
    ("output.category", {"output": '{"category": "shipping"}'}, "shipping"),
    ("output.category", {"output": "not json"}, "(missing)"),
    ({"field": "input", "length_bins": [0, 10]}, {"input": "abc"}, "0-9"),
    ({"field": "input", "length_bins": [0, 10]}, {"input": "a" * 12}, ">=10"),
])
def test_slice_labels(entry: object, fields: dict[str, object], label: str) -> None:
    assert SliceSpec.model_validate(entry).label(fields) == label


def test_bad_slice_specs_are_rejected() -> None:
    with pytest.raises(ValueError, match="ascending"):
        SliceSpec.model_validate({"field": "input", "length_bins": [10, 5]})
    assert split_sliced_metric("exact_match[category=billing]") == ("exact_match", "category", "billing")
    assert split_sliced_metric("exact_match") is None
    assert field_value({"a": {"b": 1}}, "a.b") == 1
