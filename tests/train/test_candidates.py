"""`evalkit run` and training: stale candidates are made first, wrong bases refused, leaks warned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from training_fixtures import TrainedTiny, write_rows

from evalkit.errors import ConfigError, ModelError
from evalkit.runner import execute_suite, plan_candidates, prepare_candidates
from evalkit.stages import load_inputs
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import build_tiny_llama
from evalkit.train.candidates import adapter_staleness, merged_staleness, record_base_name
from evalkit.train.config import load_train_config, read_manifest

SuiteWriter = Any


def _train_config(root: Path, model: Path, **training: Any) -> Path:
    config = {
        "model": str(model),
        "suite": "../suites/tiny.yaml",  # the suite's prompt, and its dataset as eval data
        "data": "../data/sft.jsonl",
        "output_dir": "../adapters/tiny",
        "training": {"max_steps": 2, "batch_size": 4, "learning_rate": 0.01, "max_seq_length": 512, **training},
    }
    path = root / "train" / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_trains_and_merges_missing_candidates_then_reuses_them(
    make_suite: SuiteWriter, tmp_path: Path, tiny_model_dir: Path,
    classifier_split: tuple[list[dict[str, str]], list[dict[str, str]]],
) -> None:
    train_rows, eval_rows = classifier_split
    write_rows(tmp_path / "data" / "sft.jsonl", train_rows)
    train_path = _train_config(tmp_path, tiny_model_dir)
    suite_path = make_suite(items=eval_rows[:6], candidates=[
        {"name": "base", "model": str(tiny_model_dir)},
        {"name": "lora", "model": str(tiny_model_dir), "train": "../train/tiny.yaml"},
        {"name": "merged", "model": "../adapters/tiny-merged", "merged_from": "../adapters/tiny"},
    ])
    run = execute_suite(load_suite(suite_path))
    assert [c.status for c in run.candidates] == ["ok", "ok", "ok"]
    adapter, merged = tmp_path / "adapters" / "tiny", tmp_path / "adapters" / "tiny-merged"
    assert run.candidate("lora").identity is not None
    assert run.candidate("lora").identity.adapter == str(adapter)
    assert set(run.sections["manifests"]) == {"lora", "merged"}
    assert not [w for w in run.warnings if "overlap" in w or "another prompt" in w]

    config = load_train_config(train_path)
    assert adapter_staleness(config) is None and merged_staleness(adapter, merged) is None
    trained_at = (adapter / "adapter_model.safetensors").stat().st_mtime_ns
    prepare_candidates(load_inputs(load_suite(suite_path)), only=["merged"])  # fresh: nothing retrained
    assert (adapter / "adapter_model.safetensors").stat().st_mtime_ns == trained_at

    write_rows(tmp_path / "data" / "sft.jsonl", train_rows[1:])
    assert adapter_staleness(config) == "its training data changed"
    write_rows(tmp_path / "data" / "sft.jsonl", train_rows)
    assert adapter_staleness(load_train_config(_train_config(tmp_path, tiny_model_dir, learning_rate=0.02))) == (
        "its training config or prompt changed"
    )


def test_an_adapter_trained_on_another_base_is_refused(
    make_suite: SuiteWriter, tmp_path: Path, trained_tiny: TrainedTiny
) -> None:
    other = build_tiny_llama(tmp_path / "other-base", seed=1)
    suite_path = make_suite(candidates=[{"name": "lora", "model": str(other), "adapter": str(trained_tiny.adapter)}])
    with pytest.raises(ModelError, match=r"candidate 'lora': adapter .* was trained on .*fingerprint"):
        plan_candidates(load_inputs(load_suite(suite_path)))


def test_a_run_warns_when_eval_items_are_in_the_recorded_training_data(
    make_suite: SuiteWriter, trained_tiny: TrainedTiny,
    classifier_split: tuple[list[dict[str, str]], list[dict[str, str]]],
) -> None:
    train_rows, _ = classifier_split
    suite_path = make_suite(items=train_rows[:3], candidates=[
        {"name": "lora", "model": trained_tiny.config.model, "adapter": str(trained_tiny.adapter)},
    ])
    run = execute_suite(load_suite(suite_path))
    (warning,) = [w for w in run.warnings if "overlap" in w]
    assert "candidate 'lora': 3 eval items overlap the training data" in warning and "exact" in warning
    assert run.sections["manifests"]["lora"]["data_sha256"] == trained_tiny.manifest.data_sha256


def test_a_run_warns_when_the_prompt_differs_from_the_trained_one(
    make_suite: SuiteWriter, trained_tiny: TrainedTiny,
    classifier_split: tuple[list[dict[str, str]], list[dict[str, str]]],
) -> None:
    _, eval_rows = classifier_split
    suite_path = make_suite(items=eval_rows[:2], prompt={"user": "{{ input }}", "expected": "{{ output }}"},
                            candidates=[{"name": "lora", "model": trained_tiny.config.model,
                                         "adapter": str(trained_tiny.adapter)}])
    run = execute_suite(load_suite(suite_path))
    assert any("evaluated with another prompt than it was trained on" in w for w in run.warnings)


def test_adapter_and_train_output_must_agree(make_suite: SuiteWriter, tmp_path: Path, tiny_model_dir: Path) -> None:
    _train_config(tmp_path, tiny_model_dir)
    suite_path = make_suite(candidates=[{"name": "lora", "model": str(tiny_model_dir), "adapter": "../elsewhere",
                                         "train": "../train/tiny.yaml"}])
    with pytest.raises(ConfigError, match="is not the output_dir"):
        prepare_candidates(load_inputs(load_suite(suite_path)))
    assert read_manifest(tmp_path / "adapters" / "tiny") is None


def test_a_saved_adapter_names_its_base_by_source_and_ships_no_model_card_with_a_machine_path(tmp_path: Path) -> None:
    # What peft's save_pretrained leaves: the base's local cache path in the config and in the card.
    local = "/home/someone/.cache/evalkit/models/smollm2-135m-instruct"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": local, "r": 4}))
    (tmp_path / "README.md").write_text(f"---\nbase_model: {local}\nlibrary_name: peft\n---\n")
    record_base_name(tmp_path, "smollm2-135m-instruct")
    settings = json.loads((tmp_path / "adapter_config.json").read_text())
    assert settings == {"base_model_name_or_path": "smollm2-135m-instruct", "r": 4}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json"]
