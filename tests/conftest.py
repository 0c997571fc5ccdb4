"""Shared fixtures: a tiny random Llama on disk and small suites that use it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.testing import build_tiny_llama

REPO = Path(__file__).resolve().parents[1]

# Nothing in the tests may reach a hub; a test that tried would hang, not fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random two-layer Llama with a trained BPE tokenizer and a ChatML template."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


CLASSIFIER_ITEMS = [
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "My account has been locked and I have a presentation in 2 hours!",
        "output": '{"severity": "critical", "category": "account_access", "urgency": "immediate", '
        '"sentiment": "distressed", "recommended_action": "escalate_to_agent"}',
    },
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "Can you update my billing address?",
        "output": '{"severity": "low", "category": "billing", "urgency": "routine", '
        '"sentiment": "neutral", "recommended_action": "self_service"}',
    },
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "The tracking page shows my parcel stuck for a week, annoying.",
        "output": '{"severity": "medium", "category": "shipping", "urgency": "routine", '
        '"sentiment": "frustrated", "recommended_action": "create_ticket"}',
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


SuiteWriter = Callable[..., Path]


@pytest.fixture
def make_suite(tmp_path: Path, tiny_model_dir: Path) -> SuiteWriter:
    """Return a function writing a small classifier suite on the tiny model.

    Keyword arguments override top-level suite keys; ``items`` replaces the eval data.
    """

    def write(items: list[dict[str, Any]] | None = None, **overrides: Any) -> Path:
        write_jsonl(tmp_path / "data" / "eval.jsonl", items if items is not None else CLASSIFIER_ITEMS)
        train = [dict(row, input=f"{row['input']} (ticket {n})") for n, row in enumerate(CLASSIFIER_ITEMS * 2)]
        write_jsonl(tmp_path / "data" / "train.jsonl", train)
        schema = REPO / "suites" / "schemas" / "classifier.json"
        (tmp_path / "suites" / "schemas").mkdir(parents=True, exist_ok=True)
        (tmp_path / "suites" / "schemas" / "classifier.json").write_text(schema.read_text())
        suite: dict[str, Any] = {
            "name": "tiny",
            "dataset": {"path": "../data/eval.jsonl", "train_path": "../data/train.jsonl"},
            "prompt": {
                "system": "You are a customer support classifier. Always output valid JSON.",
                "user": "{{ instruction }}\n\n{{ input }}",
                "expected": "{{ output }}",
            },
            "generation": {"max_new_tokens": 12, "batch_size": 2},
            "candidates": [{"name": "base", "model": str(tiny_model_dir)}],
            "checks": ["exact_match", "json_valid", {"json_schema": "schemas/classifier.json"},
                       "field_accuracy"],
            "output_dir": "../reports",
        }
        suite.update(overrides)
        path = tmp_path / "suites" / "tiny.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        return path

    return write
