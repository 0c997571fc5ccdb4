from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.checks import CheckContext, build_check, registered_checks
from evalkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONTEXT = CheckContext(base_dir=REPO / "suites", source="test suite")
GOLD = json.dumps({"severity": "low", "category": "billing", "urgency": "routine",
                   "sentiment": "neutral", "recommended_action": "self_service"})


def run(check_name: str, prediction: str, reference: str = GOLD, **options: object) -> dict[str, tuple[float, str]]:
    check = build_check(check_name, dict(options), CONTEXT)
    return {k: (v.value, v.reason) for k, v in check(prediction, reference).items()}


def test_builtins_are_registered() -> None:
    assert {"exact_match", "json_valid", "json_schema", "field_accuracy", "regex"} <= set(registered_checks())


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [(GOLD, 1.0), (f"  {GOLD}\n", 1.0), (GOLD.replace("low", "high"), 0.0), ("", 0.0)],
)
def test_exact_match_strips_whitespace_only(prediction: str, expected: float) -> None:
    assert run("exact_match", prediction)["exact_match"][0] == expected


@pytest.mark.parametrize(
    ("prediction", "valid"),
    [('{"a": 1}', True), ("[1, 2]", True), ("{'a': 1}", False), ('{"a": 1,}', False), ("Sure! {}", False)],
)
def test_json_valid(prediction: str, valid: bool) -> None:
    value, reason = run("json_valid", prediction)["json_valid"]
    assert value == (1.0 if valid else 0.0)
    assert (reason == "") == valid
    if not valid:
        assert reason.startswith("not JSON")


def test_json_schema_pass_and_enum_violation() -> None:
    assert run("json_schema", GOLD, value="schemas/classifier.json")["json_schema"] == (1.0, "")
    wrong = GOLD.replace('"low"', '"urgent"')
    value, reason = run("json_schema", wrong, value="schemas/classifier.json")["json_schema"]
    assert value == 0.0 and "severity" in reason


def test_json_schema_missing_field_and_non_json() -> None:
    missing = json.dumps({"severity": "low"})
    value, reason = run("json_schema", missing, value="schemas/classifier.json")["json_schema"]
    assert value == 0.0 and "required" in reason
    value, reason = run("json_schema", "not json", value="schemas/classifier.json")["json_schema"]
    assert value == 0.0 and reason.startswith("not JSON")


def test_json_schema_missing_file_is_config_error() -> None:
    with pytest.raises(ConfigError, match="not found"):
        build_check("json_schema", {"value": "schemas/nope.json"}, CONTEXT)


def test_field_accuracy_per_field() -> None:
    prediction = GOLD.replace('"billing"', '"shipping"').replace('"neutral"', '"positive"')
    scores = run("field_accuracy", prediction)
    assert scores["field_accuracy.category"][0] == 0.0
    assert "expected 'billing', got 'shipping'" in scores["field_accuracy.category"][1]
    assert scores["field_accuracy.severity"][0] == 1.0
    assert scores["field_accuracy"][0] == pytest.approx(3 / 5)


def test_field_accuracy_non_json_scores_zero_with_reason() -> None:
    scores = run("field_accuracy", "severity: low")
    assert set(scores) == {f"field_accuracy.{f}" for f in json.loads(GOLD)} | {"field_accuracy"}
    assert all(value == 0.0 for value, _ in scores.values())
    assert all(reason.startswith("not JSON") for _, reason in scores.values())


def test_field_accuracy_restricted_fields() -> None:
    scores = run("field_accuracy", GOLD, fields=["severity"])
    assert set(scores) == {"field_accuracy.severity", "field_accuracy"}


@pytest.mark.parametrize(
    ("options", "prediction", "metric", "value"),
    [
        ({"pattern": r'"severity": "(low|medium)"'}, GOLD, "regex", 1.0),
        ({"value": r"^\{"}, "x{", "regex", 0.0),
        ({"pattern": r"\{.*\}", "full": True, "name": "braces"}, " {a} ", "braces", 1.0),
        ({"pattern": r"\{", "full": True}, "{a}", "regex", 0.0),
    ],
)
def test_regex(options: dict[str, object], prediction: str, metric: str, value: float) -> None:
    check = build_check("regex", dict(options), CONTEXT)
    assert check(prediction, GOLD)[metric].value == value


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("regex", {"pattern": "("}, "invalid"),
        ("regex", {}, "needs a pattern"),
        ("exact_match", {"strict": True}, "unknown option"),
        ("nope", {}, "unknown check"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_check(name, options, CONTEXT)
