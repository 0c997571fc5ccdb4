"""The judges stage end to end on the tiny random model as a local judge (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.api import run_suite
from evalkit.judges.calibration import CACHE_FILE, judgment_cache
from evalkit.judges.providers import LocalJudge
from evalkit.judges.rubric import load_rubric, pointwise_messages
from evalkit.judges.section import JudgeClientSpec

REPO = Path(__file__).resolve().parents[2]


def test_local_judge_scores_are_probability_weighted(tiny_model_dir: Path) -> None:
    rubric = load_rubric(REPO / "rubrics/classifier_quality.yaml")
    judge = LocalJudge(JudgeClientSpec(provider="local", model=str(tiny_model_dir)))
    sample = rubric.sample
    assert sample is not None
    messages = pointwise_messages(rubric, sample.item, sample.prediction, sample.reference)
    judgment = judge.pointwise(messages, rubric)
    assert set(judgment.scores) == {"format", "accuracy", "style"}
    for name, score in judgment.scores.items():
        distribution = judgment.distributions[name]
        assert sum(distribution.values()) == pytest.approx(1.0)
        assert score == pytest.approx(sum(s * p for s, p in distribution.items()))
        assert 1.0 <= score <= 5.0
    assert judge.pointwise(messages, rubric) == judgment  # deterministic


def test_suite_with_local_judge_writes_scores_section_and_cache(make_suite, tiny_model_dir: Path,
                                                                isolated_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "labels.jsonl"  # a few of the shipped labels keep the test fast
    labels.write_text("".join((REPO / "rubrics/labels/classifier_quality.jsonl").read_text().splitlines(True)[:5]))
    suite = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "other", "model": str(tiny_model_dir), "prompt": {"system": "Be brief."}}],
        judges=[
            {"rubric": str(REPO / "rubrics/classifier_quality.yaml"),
             "judge": {"provider": "local", "model": str(tiny_model_dir)}, "min_kappa": 0.99, "labels": str(labels)},
            {"rubric": str(REPO / "rubrics/classifier_quality.yaml"), "name": "cq_pairwise", "mode": "pairwise",
             "judge": {"provider": "local", "model": str(tiny_model_dir)}, "limit": 2},
        ],
    )
    run = run_suite(suite, write=True)
    section = run.sections["judges"]["classifier_quality"]
    assert section["judge"] == {"provider": "local", "model": str(tiny_model_dir)}
    assert section["mode"] == "pointwise"
    for candidate in run.candidates:
        for item in candidate.items:
            for criterion in ("format", "accuracy", "style"):
                score = item.scores[f"judge.classifier_quality.{criterion}"]
                assert 1.0 <= score.value <= 5.0 and "probability" in score.reason
        stats = section["per_candidate"][candidate.name]["format"]
        assert stats["n"] == len(candidate.items) and stats["std"] is not None
        assert section["errors"][candidate.name] == 0
    calibration = section["calibration"]
    assert calibration["min_kappa"] == 0.99 and calibration["n"] == 5
    assert calibration["calibrated"] is False  # a random model does not agree with people
    assert any("uncalibrated" in w for w in run.warnings)

    pairwise = run.sections["judges"]["cq_pairwise"]
    assert set(pairwise["pairwise"]) == {"other"}
    assert pairwise["pairwise"]["other"]["n"] == 2
    judged = [i for i in run.candidate("other").items if "judge.cq_pairwise.preference" in i.scores]
    assert len(judged) == 2 and all(i.scores["judge.cq_pairwise.preference"].value in {0, .25, .5, .75, 1}
                                    for i in judged)

    assert run.run_dir is not None
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["sections"]["judges"]["classifier_quality"]["per_candidate"]
    records = [json.loads(line) for line in (run.run_dir / "results.jsonl").read_text().splitlines()]
    assert all("judge.classifier_quality.style" in r["scores"] for r in records)

    # A second run answers every judgment from the cache.
    with judgment_cache(isolated_home / CACHE_FILE) as cache:
        stored = len(cache)
    assert stored >= 2 * 3 + 5 + 2 * 2
    again = run_suite(suite, write=False)
    assert again.sections["judges"]["classifier_quality"]["tally"]["cache_hits"] == 6
    assert again.candidate("base").items[0].scores == run.candidate("base").items[0].scores


def test_unknown_judge_key_names_the_field(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from evalkit.errors import ConfigError
    from evalkit.suite.config import load_suite

    suite = make_suite(judges=[{"rubric": "x.yaml", "judge": {"provider": "local", "modle": "m"}}])
    with pytest.raises(ConfigError, match=r"tiny.yaml:\d+: judges.0.judge.modle: unknown key"):
        load_suite(suite)
