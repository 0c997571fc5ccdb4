"""Behaviour kept across the redesign: a mock suite's summary.json equals the one recorded before it.

``tests/golden/summary.json`` was written by ``evalkit run tests/golden/suite.yaml`` at
the commit before issue 27's redesign (modules moved into capability folders, fragments
folded). Every stage that needs no model runs on it (five checks, slices, the paired
comparison, four kinds of bar, usage, the resolved suite), so any change to what a run
measures or decides shows here as a difference. What legitimately varies between two runs
is left out: run id, times, latencies, the command, versions, and the folder the suite
was copied to. A change that is meant to alter results regenerates the file with
``EVALKIT_UPDATE_GOLDEN=1 pytest tests/test_golden_summary.py`` and says why in its commit.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main

GOLDEN = Path(__file__).parent / "golden"
VARYING_KEYS = {"run_id", "baseline_run_id", "candidate_run_id", "started_at", "finished_at", "command", "evalkit_version", "versions", "seconds",
                "latency_p50", "latency_p95", "ttft_p50", "ttft_p95", "tokens_per_second"}


def normalised(value: Any, root: str) -> Any:
    """Return ``value`` without what varies between two runs of the same suite."""
    if isinstance(value, dict):
        return {key: normalised(item, root) for key, item in value.items() if key not in VARYING_KEYS}
    if isinstance(value, list):
        return [normalised(item, root) for item in value]
    if isinstance(value, str):
        return value.replace(root, "<suite>")
    if isinstance(value, float):
        return round(value, 9)
    return value


def test_a_mock_suite_decides_as_it_did_before_the_redesign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    suite_dir = tmp_path / "suite"
    shutil.copytree(GOLDEN, suite_dir, ignore=shutil.ignore_patterns("summary.json"))
    code = main(["run", str(suite_dir / "suite.yaml"), "--store", str(tmp_path / "store.db")])
    assert code == 1  # its bars fail on purpose: failed bars and regressions are part of what is kept
    (run_dir,) = [p for p in (suite_dir / "reports" / "golden").iterdir() if p.is_dir()]
    now = normalised(json.loads((run_dir / "summary.json").read_text()), str(suite_dir))
    if os.environ.get("EVALKIT_UPDATE_GOLDEN") == "1":
        (GOLDEN / "summary.json").write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    recorded = json.loads((GOLDEN / "summary.json").read_text())
    assert differences(recorded, now) == []


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Return one line per place where ``after`` differs from ``before`` (a readable failure)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for key in sorted(set(before) | set(after))
                for line in (differences(before[key], after[key], f"{path}.{key}") if key in before and key in after
                             else [f"{path}.{key}: {'added' if key in after else 'removed'}"])]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [line for i, (b, a) in enumerate(zip(before, after, strict=True))
                for line in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {str(before)[:80]!r} -> {str(after)[:80]!r}"]
