"""The report's 'too few items to decide' list names only what the data left undecided."""

from __future__ import annotations

from evalkit.bars.view import undecidable_lines
from evalkit.comparison.result import MetricComparison


def _compared(verdict: str, delta: float) -> MetricComparison:
    # 40 paired prompts at a 30% base rate: the smallest detectable drop (0.287) is far
    # beyond the 0.015 a 5% threshold allows, so the set cannot decide 5% in general.
    return MetricComparison(metric="ifeval", kind="binary", n_items=40, baseline_value=0.3,
                            candidate_value=0.3 + delta, delta=delta, relative_delta=delta / 0.3,
                            ci_low=delta - 0.1, ci_high=delta + 0.1, p_value=0.5, test="mcnemar",
                            threshold="5%", verdict=verdict, detectable_drop=0.287)  # type: ignore[arg-type]


def test_an_inconclusive_metric_too_small_to_decide_is_listed_once() -> None:
    lines = undecidable_lines({"lora": {"ifeval": _compared("inconclusive", -0.075)},
                               "noop": {"ifeval": _compared("inconclusive", 0.0)}})
    assert len(lines) == 1 and lines[0].startswith("ifeval (lora): 40 paired items cannot decide 5%")


def test_a_metric_the_data_decided_anyway_is_not_listed() -> None:
    # A drop far larger than the detectable one (the forgetful control) is decided.
    assert undecidable_lines({"forgetful": {"ifeval": _compared("regressed", -0.3)},
                              "lora": {"ifeval": _compared("improved", 0.3)}}) == []
