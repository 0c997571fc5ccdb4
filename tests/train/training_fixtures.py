"""Fixtures and helpers for training tests: a clean classifier split, one tiny adapter trained once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.data.classifier import generate_examples
from evalkit.data.classifier_split import split_examples
from evalkit.train.candidates import train_adapter
from evalkit.train.config import Manifest, TrainConfig, load_train_config
from evalkit.train.lora import SilentReporter

PROMPT = {
    "system": "You are a customer support classifier. Always output valid JSON.",
    "user": "{{ instruction }}\n\n{{ input }}",
    "expected": "{{ output }}",
}


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def classifier_split() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A 128/32 classifier train/eval split with no near duplicates across it (real generator)."""
    return split_examples(generate_examples(160, seed=3), 0.2, seed=3)


def write_train_config(directory: Path, model: Path, **overrides: Any) -> Path:
    """Write a small SFT config on ``model`` with a prompt block; keys in overrides replace."""
    config: dict[str, Any] = {
        "model": str(model),
        "prompt": PROMPT,
        "data": "data/train.jsonl",
        "eval_data": "data/eval.jsonl",
        "output_dir": "adapters/tiny",
        "training": {"max_steps": 3, "batch_size": 4, "learning_rate": 0.01, "max_seq_length": 512},
    }
    config.update(overrides)
    path = directory / "train.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def train_dir(
    tmp_path: Path, classifier_split: tuple[list[dict[str, str]], list[dict[str, str]]]
) -> Path:
    """A directory holding data/train.jsonl and data/eval.jsonl of the clean split."""
    train, evaluation = classifier_split
    write_rows(tmp_path / "data" / "train.jsonl", train)
    write_rows(tmp_path / "data" / "eval.jsonl", evaluation)
    return tmp_path


@dataclass
class TrainedTiny:
    """The session's trained tiny adapter and what made it."""

    config: TrainConfig
    manifest: Manifest
    reporter: SilentReporter

    @property
    def adapter(self) -> Path:
        return self.config.output_path


@pytest.fixture(scope="session")
def trained_tiny(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model_dir: Path,
    classifier_split: tuple[list[dict[str, str]], list[dict[str, str]]],
) -> TrainedTiny:
    """Three SFT steps on the tiny model: an adapter with its manifest (trained once per session)."""
    root = tmp_path_factory.mktemp("trained-tiny")
    train, evaluation = classifier_split
    write_rows(root / "data" / "train.jsonl", train)
    write_rows(root / "data" / "eval.jsonl", evaluation)
    config = load_train_config(write_train_config(root, tiny_model_dir))
    reporter = SilentReporter()
    manifest = train_adapter(config, reporter)
    return TrainedTiny(config, manifest, reporter)
