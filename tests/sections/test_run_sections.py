"""One schema for a run's sections, checked where a run is written and where it is read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from evalkit.bars.spec import BarResult, BarSpec
from evalkit.benchmarks.spec import BenchmarkScore
from evalkit.comparison.result import Comparison
from evalkit.errors import DataError
from evalkit.record.results import (
    RunSections,
    SectionName,
    bars_section,
    check_sections,
    comparison_section,
    read_section,
    section_json,
)
from evalkit.record.run_dir import load_run_dir, write_run
from evalkit.store import RunStore
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, synthetic_run, write_jsonl
from tests.models.test_mock import write_mock_suite


def test_every_section_a_run_can_hold_has_a_typed_field() -> None:
    known = set(RunSections.model_fields)
    assert {"comparison", "bars", "benchmarks", "judges", "manifests", "parity", "merge_agreement", "slices",
            "sweep", "fleet", "usage", "sampling", "controls", "metric_kinds", "executor", "limit"} <= known
    for name, field in RunSections.model_fields.items():
        assert field.annotation is not None and field.default is None, name


def test_a_stage_writes_its_section_typed_through_one_door_and_a_wrong_shape_stops_the_run() -> None:
    run = synthetic_run(n_items=10, candidates=("base", "lora"))
    bars = run.section("bars")
    run.set_section("bars", bars)  # typed in, JSON kept, every field written
    assert run.sections["bars"] == [bar.model_dump(mode="json") for bar in bars]
    run.set_section_entry("controls", "ctl", {"constrain": "json_schema"})
    assert run.section("controls")["ctl"].constrain == "json_schema"
    # A stage that writes a shape its schema does not describe is evalkit's bug: exit 3, not a bad file.
    with pytest.raises(RuntimeError, match=r"internal error: .*section 'controls'.*field 'constrain'"):
        run.set_section_entry("controls", "other", {"constrain": "regex"})
    with pytest.raises(RuntimeError, match=r"internal error: .*section 'bars'"):
        run.set_section("bars", [{"candidate": "lora"}])
    assert "other" not in run.sections["controls"] and run.sections["bars"][0]["status"] == bars[0].status


def test_a_comparison_written_typed_is_its_json_with_the_verdicts_beside_the_fields() -> None:
    run = synthetic_run(n_items=30, candidates=("base", "lora"), with_comparison=True)
    comparison = run.section("comparison")
    assert run.sections["comparison"] == comparison.to_dict()
    assert run.sections["comparison"]["regressed"] == comparison.regressed


def test_the_section_names_are_the_typed_models_fields() -> None:
    # SectionName types the reader's argument; a field added to RunSections must be added there too.
    assert set(get_args(SectionName)) == set(RunSections.model_fields)


def test_a_run_reads_a_section_typed_and_refuses_a_damaged_one_naming_run_section_and_field() -> None:
    run = synthetic_run(n_items=10, candidates=("base", "lora"))
    benchmarks = run.section("benchmarks")
    score = next(iter(benchmarks["lora"].values()))
    assert isinstance(score, BenchmarkScore)
    assert run.section("sweep") is None  # absent: None, not an empty model
    # the JSON form round-trips
    assert section_json("benchmarks", benchmarks, only_set=True) == run.sections["benchmarks"]
    metric = next(iter(run.sections["benchmarks"]["lora"]))
    run.sections["benchmarks"]["lora"][metric]["acc"] = "high"
    with pytest.raises(DataError, match=rf"run {run.run_id}: sections\.benchmarks: field 'lora\.{metric}\.acc'"):
        run.section("benchmarks")
    assert read_section(run.sections, "bars") == run.section("bars")  # other sections still read


def test_a_synthetic_runs_sections_read_back_typed_after_a_json_round_trip() -> None:
    run = synthetic_run(40, seed=5, with_comparison=True)
    sections = json.loads(json.dumps(run.sections))
    check_sections(sections, "summary.json")
    comparison = comparison_section(sections)
    assert isinstance(comparison, Comparison) and comparison.baseline == "base"
    exact = comparison.candidates["lora"].metrics["exact_match"]
    assert exact.verdict == "improved" and exact.n_items == 40 and exact.candidate_value > exact.baseline_value
    bars = bars_section(sections)
    assert [b.candidate for b in bars] == ["base-fewshot", "lora", "merged"]
    assert all(b.kind == "threshold" for b in bars)  # derived from the expression when not stored


def _mock_run_dir(tmp_path: Path) -> Path:
    """Run a suite on the mock backend through the CLI (comparison, bars, usage...) and return its directory."""
    wrong = dict(json.loads(CLASSIFIER_ITEMS[1]["output"]), severity="critical")
    write_jsonl(tmp_path / "suites" / "scripted.jsonl", [{"id": "2", "output": json.dumps(wrong)}])
    suite = write_mock_suite(tmp_path, [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
        {"name": "lora", "model": "my-org/adapter", "backend": "mock", "options": {"outputs": "scripted.jsonl"}},
    ], bars=[{"lora": "exact_match >= 0.5"}])
    proc = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "EVALKIT_STORE": str(tmp_path / "s.db")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "reports" / "dry").iterdir()
    return run_dir


def test_a_damaged_section_of_a_real_run_is_refused_naming_its_field_exit_2(tmp_path: Path) -> None:
    run_dir = _mock_run_dir(tmp_path)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    check_sections(summary["sections"], str(summary_path))  # what the run wrote is its schema
    assert {"comparison", "bars", "usage", "metric_kinds"} <= set(summary["sections"])
    summary["sections"]["comparison"]["candidates"]["lora"]["metrics"]["exact_match"]["p_value"] = "tiny"
    summary_path.write_text(json.dumps(summary))
    with pytest.raises(DataError, match=r"sections: field 'comparison.candidates.lora.metrics.exact_match"
                                         r".p_value': input should be a valid number"):
        load_run_dir(run_dir)
    proc = subprocess.run([sys.executable, "-m", "evalkit", "report", str(run_dir), "--out",
                           str(tmp_path / "r.html")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "summary.json" in lines[0] and "p_value" in lines[0]
    assert not (tmp_path / "r.html").exists()


def test_a_stage_writing_a_shape_its_schema_does_not_describe_writes_nothing(tmp_path: Path) -> None:
    run = synthetic_run(12, seed=3)
    run.sections["bars"] = [{"candidate": "lora", "expression": "exact_match >= 0.8", "n_items": "many"}]
    with pytest.raises(RuntimeError, match=r"internal error: .*field 'bars.0.n_items'"):
        write_run(run, tmp_path / "runs")
    assert not any(path.is_file() for path in (tmp_path / "runs").rglob("*"))
    store = RunStore(tmp_path / "store.db")
    with pytest.raises(RuntimeError, match="bars.0.n_items"):
        store.save_run(run)
    assert store.run_summaries(run.suite_name) == []


def test_a_registered_stages_own_section_is_kept_as_written(tmp_path: Path) -> None:
    run = synthetic_run(12, seed=3)
    run.sections["toxicity"] = {"lora": {"rate": 0.02, "flagged": ["i3"]}}
    again = load_run_dir(write_run(run, tmp_path / "runs"))
    assert again.sections["toxicity"] == {"lora": {"rate": 0.02, "flagged": ["i3"]}}


def test_a_bar_stored_before_statuses_and_kinds_reads_as_it_was_decided() -> None:
    stored = {"candidate": "lora", "expression": "exact_match max_drop 3%", "passed": False, "value": 0.05}
    (old,) = bars_section({"bars": [stored]})
    assert isinstance(old, BarResult)
    assert (old.status, old.kind, old.passed, old.blocks) == ("failed", "max_drop", False, True)
    assert old.bar == BarSpec.of("lora", "exact_match max_drop 3%") and old.policy == "fail"
    assert "  bar:       exact_match max_drop 3%" in old.explain()
    # Written again, it carries the fields the old format lacked.
    assert {k: old.model_dump(mode="json")[k] for k in ("status", "kind", "passed", "blocks")} == {
        "status": "failed", "kind": "max_drop", "passed": False, "blocks": True}


def test_a_bars_stored_passed_and_blocks_follow_its_status_and_policy_when_code_changes_them() -> None:
    result = BarResult.of(BarSpec.of("lora", "exact_match >= 0.8"), "passed", 0.9, "exact_match = 0.900")
    assert (result.metric, result.kind, result.passed, result.blocks) == ("exact_match", "threshold", True, False)
    result.status = "inconclusive"
    assert (result.passed, result.blocks) == (False, True)
    result.inconclusive_policy = "warn"
    assert not result.blocks and result.model_dump(mode="json")["blocks"] is False
    result.status = "failed"
    assert (result.failed, result.blocks, result.model_dump()["passed"]) == (True, True, False)
