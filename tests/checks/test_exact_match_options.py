"""exact_match's normalisation: documented defaults unchanged, and strip / case / json configurable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from evalkit.checks import CheckContext, build_check
from evalkit.errors import ConfigError

CONTEXT = CheckContext(base_dir=Path("."), source="suite.yaml")


def scored(prediction: str, reference: str, **options: Any) -> tuple[float, str]:
    score = build_check("exact_match", dict(options), CONTEXT)(prediction, reference)["exact_match"]
    return score.value, score.reason


@pytest.mark.parametrize(("prediction", "reference", "options", "value"), [
    (" yes\n", "yes", {}, 1.0),                                   # default: surrounding whitespace stripped
    ("Yes", "yes", {}, 0.0),                                      # default: case counts
    (" yes", "yes", {"strip": False}, 0.0),
    ("Yes", "yes", {"case": False}, 1.0),
    ("STRASSE", "straße", {"case": False}, 1.0),                  # casefold, not lower
    ('{"b": 2, "a": 1}', '{"a":1,"b":2}', {}, 0.0),               # default: the texts
    ('{"b": 2, "a": 1}', '{"a":1,"b":2}', {"json": "canonical"}, 1.0),
    ('{"a": "\\u00e9"}', '{"a": "é"}', {"json": "canonical"}, 1.0),
    ('{"a": 1.0}', '{"a": 2}', {"json": "canonical"}, 0.0),
    ("plain text", "plain text", {"json": "canonical"}, 1.0),     # a reference that is not JSON: as text
    ('{"A": 1}', '{"a": 1}', {"json": "canonical", "case": False}, 1.0),
])
def test_exact_match_normalisation(prediction: str, reference: str, options: dict[str, Any], value: float) -> None:
    assert scored(prediction, reference, **options)[0] == value


def test_canonical_json_says_when_the_prediction_is_not_json() -> None:
    assert scored("Sure! {", '{"a": 1}', json="canonical") == (0.0, "not JSON (json: canonical compares JSON values)")


@pytest.mark.parametrize(("options", "named"), [
    ({"strip": "yes"}, "option strip"), ({"case": 0}, "option case"), ({"json": "sorted"}, "option json"),
    ({"lower": True}, "unknown option(s) lower"),
])
def test_bad_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        build_check("exact_match", options, CONTEXT)
