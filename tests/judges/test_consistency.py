"""Position-bias and self-consistency audits, end to end through a scripted judge on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.judges.calibration import (
    combine_orders,
    combine_repeats,
    median_of,
    position_consistency,
    rotated_rubric,
)
from evalkit.judges.providers import Judgment
from evalkit.judges.rubric import Rubric
from evalkit.judges.section import Consistency, consistency_not_counted
from tests.judges.scripted_judge import scripted_judge

REPO = Path(__file__).resolve().parents[2]
RUBRIC = str(REPO / "rubrics/classifier_quality.yaml")
TWO_CANDIDATES = [{"name": "base", "model": "TINY"},
                  {"name": "other", "model": "TINY", "prompt": {"system": "Answer in one word."}}]


def _candidates(model: Path) -> list[dict[str, Any]]:
    return [dict(c, model=str(model)) for c in TWO_CANDIDATES]


def test_position_consistency_of_a_position_biased_judge_is_zero() -> None:
    verdicts = {"lora": [(str(n), combine_orders("A", "A")) for n in range(4)]}
    entry = position_consistency(verdicts, minimum=0.8)
    assert entry["rate"] == {"preference": 0.0}
    assert entry["first_position_rate"] == 1.0
    assert entry["consistent"] is False and entry["below"] == ["preference"]
    assert entry["items"]["preference"] == ["lora:0", "lora:1", "lora:2", "lora:3"]
    why = consistency_not_counted(Consistency.model_validate(entry), "preference")
    assert why is not None and "0.00 < min_consistency 0.80" in why


def test_no_minimum_reports_without_gating() -> None:
    entry = position_consistency({"lora": [("1", combine_orders("A", "A"))]}, minimum=None)
    assert entry["consistent"] is None
    assert consistency_not_counted(Consistency.model_validate(entry), "preference") is None


def test_rotated_rubric_lists_criteria_in_another_order(good_rubric: dict[str, Any]) -> None:
    rubric = Rubric.model_validate(good_rubric)
    assert rotated_rubric(rubric, 0) is rubric
    assert rotated_rubric(rubric, 1).criterion_names == ["style", "format"]
    assert rotated_rubric(rubric, 2).criterion_names == ["format", "style"]


def test_median_and_agreement_of_repeats() -> None:
    judgments: list[Judgment | None] = [
        Judgment({"format": 4.0, "style": 2.0}), Judgment({"format": 4.0, "style": 5.0}),
        Judgment({"format": 4.0, "style": 3.0}),  # item 1
        Judgment({"format": 1.0, "style": 1.0}), None, Judgment({"format": 1.0, "style": 1.0}),  # item 2
    ]
    first, second = combine_repeats(judgments, 3, ["format", "style"])
    assert first.judgment is not None and first.judgment.scores == {"format": 4.0, "style": 3.0}
    assert first.agrees("format") is True and first.agrees("style") is False
    assert second.failed == 1 and second.agrees("style") is True
    assert median_of([], ["format"]) is None


def _pairwise_suite(make_suite, model: Path, url: str, min_consistency: float | None) -> Path:  # type: ignore[no-untyped-def]
    judge: dict[str, Any] = {"rubric": RUBRIC, "mode": "pairwise", "name": "pw",
                             "judge": {"provider": "openai", "model": "scripted", "base_url": url,
                                       "logprobs": False, "concurrency": 2}}
    if min_consistency is not None:
        judge["min_consistency"] = min_consistency
    return make_suite(candidates=_candidates(model), judges=[judge],  # type: ignore[no-any-return]
                      bars=[{"other": "judge.pw.preference >= 0.0"}])


@pytest.mark.parametrize("policy, rate, counted", [("always_a", 0.0, False), ("fair", 1.0, True)])
def test_pairwise_audit_gates_only_a_consistent_judge(make_suite, tiny_model_dir: Path, policy: str,  # type: ignore[no-untyped-def]
                                                       rate: float, counted: bool) -> None:
    with scripted_judge(policy) as judge:
        run = run_suite(_pairwise_suite(make_suite, tiny_model_dir, judge.url, 0.8), write=False)
    section = run.sections["judges"]["pw"]
    consistency = section["consistency"]
    items = run.candidate("other").items
    assert consistency["kind"] == "position" and consistency["rate"]["preference"] == rate
    assert consistency["n"]["preference"] == len(items)
    assert judge.requests["pairwise"] == 2 * len(items)  # every pair in both orders
    assert section["pairwise"]["other"]["consistency"] == rate
    bar = run.sections["bars"][0]
    assert (bar["status"] != "not_counted") is counted
    if not counted:
        assert "min_consistency" in bar["details"][0]
        assert any("below min_consistency" in w for w in run.warnings)
        # Inconsistent pairs are ties, shown as such.
        assert all(i.scores["judge.pw.preference"].value == 0.5 for i in items)
        assert all(i.scores["judge.pw.preference"].reason.startswith("order-inconsistent") for i in items)
        assert section["pairwise"]["other"]["tie_rate"] == 1.0
        assert len(consistency["items"]["preference"]) == len(items)
    transcripts = section["transcripts"]["other"][items[0].item_id]
    assert [t["label"] for t in transcripts] == ["candidate shown as A", "baseline shown as A"]
    assert transcripts[0]["messages"][-1]["content"].count(items[0].prediction) >= 1
    assert '"winner"' in transcripts[0]["reply"]


def test_self_consistency_repeats_use_the_median_and_are_cached(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    def suite(url: str) -> Path:
        return make_suite(  # type: ignore[no-any-return]
            judges=[{"rubric": RUBRIC, "name": "sc", "repeats": 3, "min_consistency": 0.9,
                     "judge": {"provider": "openai", "model": "scripted", "base_url": url, "logprobs": False}}],
            bars=[{"base": "judge.sc.format >= 1.0"}])

    with scripted_judge("first_listed") as judge:
        run = run_suite(suite(judge.url), write=False)
        items = run.candidate("base").items
        asked = judge.requests["pointwise"]
        again = run_suite(suite(judge.url), write=False)
        assert judge.requests["pointwise"] == asked  # every repeat came from the judgment cache
    section = run.sections["judges"]["sc"]
    consistency = section["consistency"]
    assert consistency["kind"] == "self" and consistency["repeats"] == 3
    # format, accuracy, style: each is listed first in one repeat of three (5) and not in two (3).
    assert consistency["rate"] == {"format": 0.0, "accuracy": 0.0, "style": 0.0}
    assert all(i.scores["judge.sc.format"].value == 3.0 for i in items)  # the median of 5, 3, 3
    assert run.sections["bars"][0]["status"] == "not_counted"
    assert [t["label"] for t in section["transcripts"]["base"][items[0].item_id]] == [
        "repeat 1 of 3", "repeat 2 of 3", "repeat 3 of 3"]
    assert again.sections["judges"]["sc"]["tally"]["cache_hits"] == 3 * len(items)
    assert section["tally"]["tasks"] == 3 * len(items)

    with scripted_judge("steady") as judge:
        steady = run_suite(suite(judge.url), write=False)
    assert steady.sections["judges"]["sc"]["consistency"]["rate"]["format"] == 1.0
    assert steady.sections["bars"][0]["status"] == "passed"
