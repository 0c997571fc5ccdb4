"""The demo adapter shipped in the repository: used while its manifest matches, retrained when not.

``make demo`` trains the adapter only when ``adapter_staleness`` gives a reason. These
tests read the real shipped manifest and the real config and data it was trained from,
and check the decision both ways: the committed files match it, and a changed config or
changed training data (in a copy of the repository's files) make it stale.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from evalkit.files.home import file_sha256
from evalkit.train.candidates import adapter_staleness
from evalkit.train.config import Manifest, TrainConfig, TrainingIdentity, load_train_config, read_manifest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "train" / "classifier-lora.yaml"
SHIPPED = REPO / "train" / "classifier-lora"


def _shipped() -> Manifest:
    manifest = read_manifest(SHIPPED)
    assert manifest is not None, f"{SHIPPED} has no evalkit manifest"
    return manifest


def _identity_without_base(config: TrainConfig, manifest: Manifest) -> TrainingIdentity:
    # The base fingerprint needs the embedded model converted (the slow test below checks
    # it); config and data are what a person edits.
    template = config.prompt_template()
    return TrainingIdentity(manifest.base_fingerprint, file_sha256(config.training_data_path),
                            config.fingerprint(template))


def _copy_repository_parts(root: Path) -> Path:
    for part in ("train/classifier-lora.yaml", "suites/classifier.yaml", "suites/schemas",
                 "data/classifier/train.jsonl", "data/classifier/eval.jsonl", "data/classifier/preferences.jsonl",
                 "rubrics/classifier_quality.yaml", "train/classifier-lora"):
        source, target = REPO / part, root / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return root / "train" / "classifier-lora.yaml"


def test_the_shipped_adapter_is_where_the_config_writes_and_the_suite_reads() -> None:
    config = load_train_config(CONFIG)
    assert config.output_path == SHIPPED
    assert (SHIPPED / "adapter_model.safetensors").is_file() and (SHIPPED / "adapter_config.json").is_file()


def test_the_shipped_manifest_matches_the_committed_config_and_data() -> None:
    config, manifest = load_train_config(CONFIG), _shipped()
    assert manifest.mismatch(_identity_without_base(config, manifest)) is None
    # Portable: no machine path, the data found relative to the adapter.
    assert Path(manifest.data_path) == REPO / "data" / "classifier" / "train.jsonl"
    assert manifest.base_path == "" and manifest.base_source == "smollm2-135m-instruct"
    assert manifest.command.startswith("evalkit train train/classifier-lora.yaml")
    assert manifest.machine["cpu"] and "precision" in manifest.machine


def test_a_changed_config_or_data_makes_the_shipped_adapter_stale(tmp_path: Path) -> None:
    config_file = _copy_repository_parts(tmp_path)
    manifest = read_manifest(config_file.parent / "classifier-lora")
    assert manifest is not None
    assert manifest.mismatch(_identity_without_base(load_train_config(config_file), manifest)) is None

    settings = yaml.safe_load(config_file.read_text())
    settings["training"]["learning_rate"] *= 2
    config_file.write_text(yaml.safe_dump(settings))
    changed = load_train_config(config_file)
    assert manifest.mismatch(_identity_without_base(changed, manifest)) == "its training config or prompt changed"

    settings["training"]["learning_rate"] /= 2
    config_file.write_text(yaml.safe_dump(settings))
    data = tmp_path / "data" / "classifier" / "train.jsonl"
    data.write_text(data.read_text() + data.read_text().splitlines()[0] + "\n")
    restored = load_train_config(config_file)
    assert manifest.mismatch(_identity_without_base(restored, manifest)) == "its training data changed"


@pytest.mark.slow
def test_make_demo_would_not_retrain_the_shipped_adapter(tmp_path: Path) -> None:
    # The whole decision prepare_candidate_models takes, base fingerprint included.
    assert adapter_staleness(load_train_config(CONFIG)) is None
    config_file = _copy_repository_parts(tmp_path)
    data = tmp_path / "data" / "classifier" / "train.jsonl"
    data.write_text(data.read_text().replace("Classify", "Classify", 1) + "\n")
    assert adapter_staleness(load_train_config(config_file)) == "its training data changed"


def test_a_relative_data_path_is_read_relative_to_the_manifest(tmp_path: Path) -> None:
    from evalkit.train.config import portable_path, write_manifest

    data = tmp_path / "data" / "train.jsonl"
    adapter = tmp_path / "train" / "adapter"
    adapter.mkdir(parents=True)
    recorded = portable_path(data, adapter)
    assert recorded == "../../data/train.jsonl"
    write_manifest(adapter, Manifest(kind="adapter", method="sft", base_source="m", base_fingerprint="f",
                                     base_path="", data_path=recorded, data_sha256="d", data_examples=1,
                                     config={}, config_fingerprint="c", prompt_hash="p"))
    manifest = read_manifest(adapter)
    assert manifest is not None and Path(manifest.data_path) == data
