from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from evalkit.errors import DataError
from evalkit.judges.calibration import agreement, is_calibrated, load_labels, to_level, weighted_kappa
from evalkit.judges.rubric import load_rubric

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
HUMAN = [5, 3, 1, 4, 2, 5, 4, 1, 3, 3, 2, 5]
JUDGE = [4, 3, 2, 4, 2, 5, 3, 1, 4, 3, 1, 5]


@pytest.mark.parametrize("human, judge", [
    (HUMAN, JUDGE),
    ([1, 1, 5, 5, 3], [1, 5, 5, 1, 3]),
    ([1, 3, 5, 3, 1], [5, 3, 1, 3, 5]),
    (list(RNG.integers(1, 6, 40)), list(RNG.integers(1, 6, 40))),
])
@pytest.mark.parametrize("weights", ["quadratic", "linear"])
def test_weighted_kappa_matches_sklearn(human: list[int], judge: list[int], weights: str) -> None:
    expected = cohen_kappa_score(human, judge, labels=[1, 2, 3, 4, 5], weights=weights)
    assert weighted_kappa([int(h) for h in human], [int(j) for j in judge], weights) == pytest.approx(expected)


def test_kappa_undefined_when_both_raters_use_one_level() -> None:
    assert weighted_kappa([4, 4, 4], [4, 4, 4]) is None


def test_agreement_statistics_match_scipy_and_hand_counts() -> None:
    judge = [4.2, 2.6, 1.4, 3.9, 2.0, 4.8, 3.4, 1.1, 3.6, 3.0, 1.5, 4.6]
    stats = agreement(HUMAN, judge)
    levels = [to_level(s) for s in judge]
    assert levels == [4, 3, 1, 4, 2, 5, 3, 1, 4, 3, 2, 5]
    assert stats.kappa == pytest.approx(cohen_kappa_score(HUMAN, levels, labels=[1, 2, 3, 4, 5], weights="quadratic"))
    assert stats.spearman == pytest.approx(spearmanr(HUMAN, judge).statistic)
    assert stats.exact == pytest.approx(sum(h == j for h, j in zip(HUMAN, levels, strict=True)) / 12)
    assert stats.within_one == pytest.approx(sum(abs(h - j) <= 1 for h, j in zip(HUMAN, levels, strict=True)) / 12)
    assert stats.self_consistency is None


def test_self_consistency_is_mean_spread_of_repeats() -> None:
    stats = agreement([3, 4], [3.0, 4.0], repeats=[[3.0, 5.0], [4.0, 4.0]])
    assert stats.self_consistency == pytest.approx((np.std([3, 5]) + 0.0) / 2)


def test_spearman_undefined_for_a_constant_rater() -> None:
    assert agreement([1, 2, 3], [3.0, 3.0, 3.0]).spearman is None


def test_is_calibrated_needs_every_criterion() -> None:
    assert is_calibrated({"a": 0.5, "b": 0.6}, ["a", "b"], 0.4)
    assert not is_calibrated({"a": 0.5, "b": 0.3}, ["a", "b"], 0.4)
    assert not is_calibrated({"a": 0.5}, ["a", "b"], 0.4)
    assert is_calibrated({}, ["a"], None)


def test_shipped_labels_cover_every_level_of_every_criterion() -> None:
    rubric = load_rubric(REPO / "rubrics/classifier_quality.yaml")
    examples = load_labels(rubric.labels_path(), rubric)  # type: ignore[arg-type]
    assert len(examples) >= 12
    for name in rubric.criterion_names:
        assert len({e.scores[name] for e in examples}) >= 4, name


@pytest.mark.parametrize("line, problem", [
    ("not json", "not valid JSON"),
    ('{"item": {}, "prediction": "p", "scores": {"format": 6, "accuracy": 1, "style": 1}}', "scores.format"),
    ('{"item": {}, "prediction": "p", "scores": {"format": 2, "accuracy": 1}}', "scores.style"),
    ('{"prediction": "p", "scores": {}}', "needs 'item'"),
])
def test_bad_label_lines_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    rubric = load_rubric(REPO / "rubrics/classifier_quality.yaml")
    path = tmp_path / "labels.jsonl"
    good = {"item": {}, "prediction": "p", "scores": {"format": 1, "accuracy": 1, "style": 1}}
    path.write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(DataError, match=f"labels.jsonl:2: .*{problem}"):
        load_labels(path, rubric)


def test_a_label_whose_text_holds_a_raw_line_separator_stays_one_record(tmp_path: Path) -> None:
    # U+2028 and a form feed are legal raw inside a JSON string; only "\n" ends a JSONL line.
    rubric = load_rubric(REPO / "rubrics/classifier_quality.yaml")
    scores = {"format": 1, "accuracy": 2, "style": 3}
    rows = [{"item": {"input": "a\u2028b"}, "prediction": "line one\u2029line two\x0cend", "scores": scores},
            {"item": {}, "prediction": "p", "scores": scores}]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\r\n" for row in rows), encoding="utf-8")
    examples = load_labels(path, rubric)
    assert [e.prediction for e in examples] == ["line one\u2029line two\x0cend", "p"]
    assert [e.line for e in examples] == [1, 2]
