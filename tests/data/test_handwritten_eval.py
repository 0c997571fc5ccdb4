"""The hand-written classifier eval set: valid labels, the README's label rules, no train overlap."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from evalkit.data.items import find_leaks, load_items
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "classifier"
HANDWRITTEN = DATA / "handwritten.jsonl"
SCHEMA = json.loads((REPO / "suites" / "schemas" / "classifier.json").read_text())
KEY_ORDER = ["severity", "category", "urgency", "sentiment", "recommended_action"]
# data/classifier/README.md: urgency and recommended action follow from severity.
URGENCY = {"critical": "immediate", "high": "same_day", "medium": "routine", "low": "routine"}
ACTION = {"critical": "escalate_to_agent", "high": "escalate_to_agent", "medium": "create_ticket",
          "low": "self_service"}

LINES = [json.loads(line) for line in HANDWRITTEN.read_text(encoding="utf-8").splitlines()]


def test_at_least_forty_distinct_messages() -> None:
    assert len(LINES) >= 40
    assert len({row["input"].strip().lower() for row in LINES}) == len(LINES)


@pytest.mark.parametrize("row", LINES, ids=[f"line{n}" for n in range(1, len(LINES) + 1)])
def test_line_follows_the_format_schema_and_label_rules(row: dict[str, str]) -> None:
    assert list(row) == ["instruction", "input", "output"]
    assert row["instruction"] == "Classify this customer message by severity and category"
    labels = json.loads(row["output"])
    jsonschema.validate(labels, SCHEMA)
    assert list(labels) == KEY_ORDER
    assert row["output"] == json.dumps(labels), "serialised with json.dumps defaults, like eval.jsonl"
    assert labels["urgency"] == URGENCY[labels["severity"]]
    assert labels["recommended_action"] == ACTION[labels["severity"]]


def test_every_label_value_occurs() -> None:
    seen = {key: Counter(json.loads(row["output"])[key] for row in LINES) for key in ("severity", "category",
                                                                                       "sentiment")}
    for key in seen:
        assert set(seen[key]) == set(SCHEMA["properties"][key]["enum"]), key


def test_no_message_repeats_a_generated_one() -> None:
    handwritten = load_items(HANDWRITTEN)
    for split in ("train.jsonl", "eval.jsonl"):
        assert find_leaks(load_items(DATA / split), handwritten) == [], split


def test_the_handwritten_suite_loads_with_the_demo_candidates() -> None:
    suite = load_suite(REPO / "suites" / "classifier-handwritten.yaml")
    main = load_suite(REPO / "suites" / "classifier.yaml")
    assert suite.resolve(suite.dataset.path) == HANDWRITTEN
    assert [c.model_dump() for c in suite.candidates] == [c.model_dump() for c in main.candidates]
    assert suite.prompt == main.prompt
