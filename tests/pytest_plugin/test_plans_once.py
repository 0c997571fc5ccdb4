"""The plugin plans a suite once: its reuse key and its run share the plans, and its bars are the run's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evalkit.runner
from evalkit.pytest_plugin.plugin import EvalkitSettings, SuiteRuns
from evalkit.record.results import bars_section
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl
from tests.models.test_mock import write_mock_suite


def _suite(root: Path) -> Path:
    wrong = dict(json.loads(CLASSIFIER_ITEMS[1]["output"]), severity="critical")
    write_jsonl(root / "suites" / "scripted.jsonl", [{"id": "2", "output": json.dumps(wrong)}])
    return write_mock_suite(root, [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
        {"name": "lora", "model": "my-org/adapter", "backend": "mock", "options": {"outputs": "scripted.jsonl"}},
    ], bars=[{"lora": "exact_match >= 0.5"}, {"lora": "exact_match >= 0.9"}])


def test_a_suite_is_planned_once_and_its_bars_are_the_runs_own(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    suite = _suite(tmp_path)
    planned: list[list[str]] = []
    real_plan = evalkit.runner.plan_candidates

    def counting_plan(*args: Any, **kwargs: Any) -> Any:
        plans = real_plan(*args, **kwargs)
        planned.append([plan.config.name for plan in plans])
        return plans

    monkeypatch.setattr(evalkit.runner, "plan_candidates", counting_plan)
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    settings = EvalkitSettings(store=tmp_path / "store.db", report_dir=tmp_path / "reports", cache=True)
    result = SuiteRuns(settings, session_id=None, rootpath=tmp_path)(suite)
    assert planned == [["base", "lora"]]  # the key and the run: one planning
    assert result.run_dir is not None and not result.cached
    stored = bars_section(json.loads((result.run_dir / "summary.json").read_text())["sections"])
    assert [(b.bar.expression, b.status) for b in result.bars] == [(r.expression, r.status) for r in stored]
    assert [b.status for b in result.bars] == ["passed", "failed"]

    # A second session: planned once more (to key it), reused without running.
    again = SuiteRuns(settings, session_id=None, rootpath=tmp_path)(suite)
    assert planned == [["base", "lora"], ["base", "lora"]]
    assert again.cached and again.run_dir == result.run_dir
    assert [b.status for b in again.bars] == ["passed", "failed"]
