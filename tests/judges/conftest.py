"""Judges tests: an isolated $EVALKIT_HOME (judgment cache) and rubric helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

GOOD_RUBRIC: dict[str, Any] = {
    "name": "quality",
    "criteria": [
        {"name": "format", "description": "Is it JSON?",
         "levels": {1: "no", 2: "barely", 3: "partly", 4: "mostly", 5: "exactly"}},
        {"name": "style", "description": "Is it terse?",
         "levels": {1: "chatty", 2: "wordy", 3: "ok", 4: "terse", 5: "perfect"}},
    ],
    "template": "Input: {{ item.input }}\nExpected: {{ reference }}\nActual: {{ prediction }}\n"
                "{{ criteria }}\n{{ output_format }}",
    "sample": {"item": {"input": "hi"}, "prediction": "{}", "reference": "{}"},
}


@pytest.fixture
def good_rubric() -> dict[str, Any]:
    """A valid rubric as data (a fresh copy per test)."""
    import copy

    return copy.deepcopy(GOOD_RUBRIC)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("evalkit-home")
    monkeypatch.setenv("EVALKIT_HOME", str(home))
    return home


@pytest.fixture
def write_rubric(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(data: dict[str, Any] | str, name: str = "rubric.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write
