"""Fixtures for the pytest-plugin tests: inner pytest sessions on suites of the tiny model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

SuiteFactory = Callable[..., Path]


@pytest.fixture
def plugin_suite(pytester: pytest.Pytester, tiny_model_dir: Path) -> SuiteFactory:
    """Return a function writing ``suite.yaml`` into the pytester directory.

    Two candidates on the tiny random model (so exact_match is 0 for both), and a
    regex check ``answered`` that every answer meets. Keyword arguments override keys.
    """

    def write(**overrides: Any) -> Path:
        rows = [{"input": f"message {i}", "output": '{"severity": "low"}'} for i in range(3)]
        pytester.makefile(".jsonl", eval="\n".join(json.dumps(row) for row in rows))
        suite: dict[str, Any] = {
            "name": "tiny",
            "dataset": {"path": "eval.jsonl"},
            "generation": {"max_new_tokens": 4, "batch_size": 4},
            "candidates": [
                {"name": "base", "model": str(tiny_model_dir)},
                {"name": "lora", "model": str(tiny_model_dir), "prompt": {"system": "Be brief."}},
            ],
            "checks": ["exact_match", {"regex": {"pattern": "", "name": "answered"}}],
            "output_dir": "reports",
            "bars": [
                {"lora": "answered == 1.0"},
                {"lora": "exact_match >= 0.80"},
                {"lora": "answered max_drop 3%"},
                {"lora": "no significant regression on exact_match"},
            ],
        }
        suite.update(overrides)
        path = pytester.path / "suite.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        return path

    return write


@pytest.fixture
def evalkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private EVALKIT_HOME, so the run cache starts empty in every test."""
    home = tmp_path / "evalkit-home"
    monkeypatch.setenv("EVALKIT_HOME", str(home))
    return home
