"""Any model output becomes a score with a reason: no built-in check raises, whatever it is given."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from evalkit.checks import CheckContext, Score, build_check
from evalkit.checks.registry import REASON_VALUE_CHARS, never_raising, parse_json_object

REPO = Path(__file__).resolve().parents[2]
CONTEXT = CheckContext(base_dir=REPO / "suites", source="test suite")
GOLD = json.dumps({"severity": "low", "category": "billing", "urgency": "routine",
                   "sentiment": "neutral", "recommended_action": "self_service"})

HOSTILE = {
    "deep_open_brackets": "[" * 3000,
    "deep_balanced": "[" * 3000 + "]" * 3000,
    "deep_objects": '{"a":' * 3000 + "1" + "}" * 3000,
    "lone_surrogates": '{"severity": "\ud800low\udfff"}',
    "nul": '{"severity": "low\x00"}\x00',
    "rich_markup": "[/] [bold red]x[/bold red] [link=http://x]y[/link]",
    "script": '</script><script>alert(1)</script>',
    "one_megabyte": "x" * 1_000_000,
    "one_megabyte_json_field": json.dumps({"severity": "y" * 1_000_000}),
    "empty": "",
}

CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("exact_match", {}),
    ("json_valid", {}),
    ("json_schema", {"path": "schemas/classifier.json"}),
    ("field_accuracy", {}),
    ("regex", {"pattern": '"severity": "(low|high)"'}),
]


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize(("check_name", "options"), CHECKS, ids=[c[0] for c in CHECKS])
def test_every_check_scores_hostile_output_with_a_reason(check_name: str, options: dict[str, Any],
                                                         name: str) -> None:
    scores = build_check(check_name, dict(options), CONTEXT)(HOSTILE[name], GOLD)
    assert scores
    for metric, score in scores.items():
        assert 0.0 <= score.value <= 1.0, metric
        assert score.value == 1.0 or score.reason, f"{metric} failed without a reason"
        assert len(score.reason) < 1000, f"{metric}: the reason quotes too much ({len(score.reason)} chars)"


def test_deep_nesting_is_not_json_with_a_reason() -> None:
    value, reason = parse_json_object("[" * 3000)
    assert value is None and "nested deeper" in reason


def test_a_long_field_value_is_cut_in_the_reason() -> None:
    scores = build_check("field_accuracy", {}, CONTEXT)(HOSTILE["one_megabyte_json_field"], GOLD)
    reason = scores["field_accuracy.severity"].reason
    assert "more characters" in reason and len(reason) < 3 * REASON_VALUE_CHARS


def test_a_check_that_raises_scores_zero_with_the_error_as_reason() -> None:
    def buggy(prediction: str, reference: str) -> Mapping[str, Score]:
        raise KeyError("boom")

    # The wrapper build_check puts around every registered check (not registered here,
    # so no listing of checks ever shows a test-only one).
    scores = never_raising("buggy", buggy)("anything", GOLD)
    assert scores["buggy"].value == 0.0
    assert "KeyError" in scores["buggy"].reason
