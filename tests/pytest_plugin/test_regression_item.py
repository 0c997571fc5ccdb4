"""A regression no bar names fails the session, as it makes ``evalkit run`` exit 1 (mock backend, no torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("evalkit_home")


def _suite(root: Path, lora_echo: str) -> Path:
    rows = [{"input": f"ticket {n}", "output": json.dumps({"severity": "low", "n": n})} for n in range(40)]
    (root / "eval.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    suite = {
        "name": "gate",
        "dataset": {"path": "eval.jsonl"},
        "candidates": [
            {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
            {"name": "lora", "model": "my-org/adapter", "backend": "mock", "options": {"echo": lora_echo}},
        ],
        "checks": ["exact_match", {"regex": {"pattern": "", "name": "answered"}}],
        "output_dir": "reports",
        "bars": [{"lora": "answered == 1.0"}],  # met either way: only the comparison sees the drop
    }
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_regression_without_a_bar_fails_pytest_exactly_when_evalkit_run_exits_1(
    pytester: pytest.Pytester,
) -> None:
    suite = _suite(pytester.path, lora_echo="prompt")  # lora answers with the prompt: exact_match 1.0 -> 0.0
    result = pytester.runpytest("--evalkit", str(suite), "-rA", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["PASSED suite.yaml::lora: answered == 1.0"])
    result.stdout.fnmatch_lines(["FAILED suite.yaml::no regression against the baseline - regressed against*"])
    result.stdout.fnmatch_lines(["  lora: exact_match dropped 1.0000: *allowed by 3%, significant*"])
    assert "Traceback" not in result.stdout.str()
    cli = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite), "--out", str(pytester.path / "cli")],
                         capture_output=True, text=True, timeout=300, cwd=pytester.path,
                         env={**os.environ, "EVALKIT_STORE": str(pytester.path / "cli.db")})
    assert cli.returncode == 1, cli.stdout + cli.stderr


def test_no_regression_passes_and_agrees_with_evalkit_run(pytester: pytest.Pytester) -> None:
    suite = _suite(pytester.path, lora_echo="expected")
    pytester.runpytest("--evalkit", str(suite)).assert_outcomes(passed=2)
    cli = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite), "--out", str(pytester.path / "cli")],
                         capture_output=True, text=True, timeout=300, cwd=pytester.path,
                         env={**os.environ, "EVALKIT_STORE": str(pytester.path / "cli.db")})
    assert cli.returncode == 0, cli.stdout + cli.stderr
