"""`evalkit run` ends with one verdict line, whether the run passes or fails (mock backend: no model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.cli import main
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl


def _suite(root: Path, bars: list[Any], **extra: Any) -> Path:
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    suite = {
        "name": "verdict",
        "dataset": {"path": "../data/eval.jsonl"},
        "candidates": [{"name": "base", "model": "m", "backend": "mock", "options": {"echo": "expected"}},
                       {"name": "lora", "model": "m", "backend": "mock", "options": {"echo": "prompt"}}],
        "checks": ["exact_match"],
        "bars": bars,
        "output_dir": "../reports",
        **extra,
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


def test_an_undecided_run_prints_one_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Three items, both candidates right on each: far too few paired items to decide a 3% drop.
    suite = _suite(tmp_path, [{"base": "exact_match >= 0.5"}, {"twin": "exact_match max_drop 3%"}],
                   candidates=[{"name": "base", "model": "m", "backend": "mock"},
                               {"name": "twin", "model": "m", "backend": "mock"}])
    assert main(["run", str(suite)]) == 1
    lines = _verdict_lines(capsys)
    assert lines == ["verdict: FAILED (exit 1): 2 bars: 1 passed, 1 undecided; base baseline, twin undecided"]


def test_an_undecided_bar_that_only_warns_passes_with_one_verdict_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path, [{"twin": "exact_match max_drop 3%"}], inconclusive="warn",
                   candidates=[{"name": "base", "model": "m", "backend": "mock"},
                               {"name": "twin", "model": "m", "backend": "mock"}])
    assert main(["run", str(suite)]) == 0
    lines = _verdict_lines(capsys)
    assert lines == ["verdict: PASSED (exit 0): 1 bar: 1 undecided; base baseline, twin undecided"]


def test_a_run_without_bars_prints_one_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_suite(tmp_path, []))]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("verdict:")] == \
        ["verdict: PASSED (exit 0): no bars; base baseline, lora no bars"]
    assert "bars" not in [line.strip() for line in out.splitlines()]  # no empty bars table


def test_the_bars_table_lists_passed_bars_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path, [{"base": "exact_match >= 0.5"}, {"lora": "exact_match >= 0.5"}])
    assert main(["run", str(suite)]) == 1
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "candidate" in line and "to decide" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == \
        ["candidate", "bar", "value", "95% interval", "status", "to decide"]
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in out.splitlines()
            if line.startswith("│") and "exact_match >= 0.5" in line]
    assert [(row[0], row[4]) for row in rows] == [("base", "passed"), ("lora", "failed")]
    assert rows[0][5].startswith("decided on 3 items: meets >= 50.0%")
