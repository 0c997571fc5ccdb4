"""`evalkit run` ends with one verdict line, whether the run passes or fails (mock backend: no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.cli import main
from evalkit.testing import CLASSIFIER_ITEMS, write_jsonl


def _suite(root: Path, bars: list[Any]) -> Path:
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    suite = {
        "name": "verdict",
        "dataset": {"path": "../data/eval.jsonl"},
        "candidates": [{"name": "base", "model": "m", "backend": "mock", "options": {"echo": "expected"}},
                       {"name": "lora", "model": "m", "backend": "mock", "options": {"echo": "prompt"}}],
        "checks": ["exact_match"],
        "bars": bars,
        "output_dir": "../reports",
    }
    path = root / "suites" / "verdict.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite))
    return path


def _verdict_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict:")]


def test_a_passing_run_prints_one_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_suite(tmp_path, [{"base": "exact_match >= 0.5"}]))]) == 0
    lines = _verdict_lines(capsys)
    assert lines == ["verdict: PASSED (exit 0): 1 bar: 1 passed; base baseline, lora no bars"]


def test_a_failing_run_prints_one_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_suite(tmp_path, [{"lora": "exact_match >= 0.5"}]))]) == 1
    lines = _verdict_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("verdict: FAILED (exit 1): 1 bar: 1 failed")
    assert "lora blocked" in lines[0]
