"""The ``manifests`` section: the training stage records each manifest in the shape its model describes."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from evalkit.errors import DataError, ModelError
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.sections import parse_section
from evalkit.stages import load_inputs
from evalkit.suite.config import load_suite
from evalkit.train.candidates import record_training
from evalkit.train.config import (
    MANIFEST_NAME,
    CandidateManifest,
    Manifest,
    ManifestsSection,
    write_manifest,
)
from tests.models.test_mock import write_mock_suite


def _manifest(data: Path) -> Manifest:
    return Manifest(kind="adapter", method="sft", base_source="smollm2-135m-instruct", base_fingerprint="f" * 64,
                    base_path="", data_path=str(data), data_sha256="0" * 64, data_examples=12,
                    config={"method": "sft", "training": {"epochs": 2}}, config_fingerprint="c" * 64,
                    prompt_hash="", loss_curve=[{"step": 1.0, "epoch": 0.5, "loss": 2.5}],
                    trainable_parameters=10, total_parameters=100, seconds=1.5, evalkit_version="0.1",
                    command="evalkit train t.yaml", machine={"cpu": "x", "cpu_flags": ["avx2"], "gpu": None})


def _stage(tmp_path: Path) -> tuple[RunResult, Path]:
    """Run the training stage over a mock-backend suite whose candidate names an adapter with a manifest."""
    adapter = tmp_path / "adapters" / "lora"
    adapter.mkdir(parents=True)
    write_manifest(adapter, _manifest(tmp_path / "gone.jsonl"))
    path = write_mock_suite(tmp_path, [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock"},
        {"name": "lora", "model": "smollm2-135m-instruct", "backend": "mock", "adapter": str(adapter)},
    ])
    inputs = load_inputs(load_suite(path))
    run = RunResult(run_id="r1", suite_name="dry", suite_path=str(path), baseline="base",
                    candidates=[CandidateResult(name="base"), CandidateResult(name="lora")], started_at="")
    record_training(inputs, run, {}, SilentProgress())
    return run, adapter


def test_the_section_records_the_manifest_type_itself() -> None:
    """One shape: the file's manifest is the section's entry, not a copy of its fields."""
    assert typing.get_args(typing.get_args(ManifestsSection)[1])[0] is Manifest
    assert typing.get_args(CandidateManifest)[0] is Manifest
    recorded = parse_section(CandidateManifest, _manifest(Path("train.jsonl")).to_dict(), "manifest")
    assert isinstance(recorded, Manifest) and recorded.loss_curve == [{"step": 1.0, "epoch": 0.5, "loss": 2.5}]


def test_the_training_stage_records_manifests_its_model_describes(tmp_path: Path) -> None:
    run, _ = _stage(tmp_path)
    stored = run.sections["manifests"]
    assert set(stored) == {"lora"}
    parsed: ManifestsSection = parse_section(ManifestsSection, stored, "manifests")
    assert parsed["lora"].loss_curve == [{"step": 1.0, "epoch": 0.5, "loss": 2.5}]
    assert parsed["lora"].machine["cpu_flags"] == ["avx2"] and parsed["lora"].adapter_hash is None
    on_disk = json.loads((tmp_path / "adapters" / "lora" / MANIFEST_NAME).read_text())
    assert stored["lora"] == on_disk, "the section holds the manifest's JSON form, key for key"
    assert any("gone or changed" in warning for warning in run.warnings)


def test_a_damaged_manifest_stops_the_stage_naming_the_candidate_and_field(tmp_path: Path) -> None:
    run, adapter = _stage(tmp_path)
    record = json.loads((adapter / MANIFEST_NAME).read_text())
    (adapter / MANIFEST_NAME).write_text(json.dumps({**record, "data_examples": "a dozen"}))
    with pytest.raises(ModelError, match=r"lora/evalkit-manifest.json: field 'data_examples': .*retrain or delete"):
        _stage_again(tmp_path, run)
    with pytest.raises(DataError, match=r"field 'lora.kind'"):
        parse_section(ManifestsSection, {"lora": {**record, "kind": "full"}}, "manifests")


def _stage_again(tmp_path: Path, run: RunResult) -> None:
    inputs = load_inputs(load_suite(tmp_path / "suites" / "dry.yaml"))
    record_training(inputs, run, {}, SilentProgress())


def test_a_manifest_from_before_command_and_machine_still_reads(tmp_path: Path) -> None:
    older = dataclasses.asdict(_manifest(tmp_path / "train.jsonl"))
    for newer in ("command", "machine", "created_at", "adapter_path", "adapter_hash"):
        del older[newer]
    parsed = parse_section(ManifestsSection, {"lora": older}, "manifests")["lora"]
    assert (parsed.command, parsed.machine, parsed.created_at, parsed.adapter_path) == ("", {}, "", None)
