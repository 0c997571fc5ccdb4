"""The gate's shipped controls and the remedy: the no-op, forgetful and remedy adapters match their configs and are what they claim.

``make demo`` uses a shipped adapter while its manifest matches its train config, data and
base (``adapter_staleness``), so these tests check the committed files against the
committed configs the way ``test_shipped_adapter.py`` does for the demo adapter: a fast
check of config and data, and a slow one of the whole decision, base fingerprint included.
The no-op control must change nothing: every LoRA B matrix in its file is zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from evalkit.files.home import file_sha256
from evalkit.suite.config import load_suite
from evalkit.train.candidates import adapter_staleness
from evalkit.train.config import TrainingIdentity, load_train_config, read_manifest

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "train"
CONTROLS = ["classifier-lora-noop", "classifier-lora-forgetful", "classifier-lora-forgetful-curve"]
SHIPPED = [*CONTROLS, "classifier-lora-remedy", "classifier-lora-replay"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_control_matches_its_committed_config_and_data(name: str) -> None:
    config = load_train_config(TRAIN / f"{name}.yaml")
    assert config.output_path == TRAIN / name
    manifest = read_manifest(config.output_path)
    assert manifest is not None, f"{config.output_path} has no evalkit manifest"
    # Config and data as a person edits them; the base fingerprint is the slow test's.
    identity = TrainingIdentity(manifest.base_fingerprint, file_sha256(config.training_data_path),
                                config.fingerprint(config.prompt_template()))
    assert manifest.mismatch(identity) is None
    assert manifest.command == f"evalkit train train/{name}.yaml"
    assert manifest.base_path == "" and Path(manifest.data_path) == REPO / "data" / "classifier" / "train.jsonl"


def test_the_noop_control_changes_nothing() -> None:
    adapter = TRAIN / "classifier-lora-noop"
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    lora_b = {name: tensor for name, tensor in weights.items() if "lora_B" in name}
    # q/k/v/o/gate/up/down of the top 15 layers, as the demo adapter.
    assert len(lora_b) == 7 * 15
    assert all(torch.count_nonzero(tensor) == 0 for tensor in lora_b.values())
    manifest = read_manifest(adapter)
    assert manifest is not None and manifest.loss_curve == [] and manifest.config["training"]["max_steps"] == 0


@pytest.mark.parametrize(("name", "times"), [("classifier-lora-forgetful", 10), ("classifier-lora-forgetful-curve", 5)])
def test_the_forgetful_controls_were_trained_as_the_article_warns(name: str, times: int) -> None:
    # A learning rate many times the demo's, on every linear layer of every decoder layer.
    config = load_train_config(TRAIN / f"{name}.yaml")
    demo = load_train_config(TRAIN / "classifier-lora.yaml")
    assert config.training.learning_rate >= times * demo.training.learning_rate
    assert config.lora.layers is None and len(config.lora.target_modules) == 7
    manifest = read_manifest(config.output_path)
    assert manifest is not None and len(manifest.loss_curve) == config.training.max_steps


def test_the_forgetting_curve_ships_the_checkpoints_its_suite_sweeps() -> None:
    config = load_train_config(TRAIN / "classifier-lora-forgetful-curve.yaml")
    assert config.training.max_steps is not None and config.training.save_steps is not None
    folder = config.output_path / "checkpoints"
    steps = sorted(int(p.name.split("-")[1]) for p in folder.iterdir())
    assert steps == list(range(config.training.save_steps, config.training.max_steps + 1, config.training.save_steps))
    suite = yaml.safe_load((REPO / "suites" / "forgetting-curve.yaml").read_text())
    assert (REPO / "suites" / suite["sweep"]["checkpoints"]).resolve() == folder
    # The suite loads, its sweep expanded into one candidate per shipped checkpoint.
    names = [c.name for c in load_suite(REPO / "suites" / "forgetting-curve.yaml").candidates]
    assert names == ["base", "noop", "forgetful", *(f"curve-step-{step}" for step in steps)]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_make_demo_would_not_retrain_a_shipped_control(name: str) -> None:
    # The whole decision prepare_candidate_models takes, base fingerprint included.
    assert adapter_staleness(load_train_config(TRAIN / f"{name}.yaml")) is None


def test_the_remedy_is_the_demo_recipe_without_the_mlp_up_and_down_projections() -> None:
    # The one change the ablation pointed to (BENCHMARKS "The remedy"); everything else is the demo's.
    remedy = load_train_config(TRAIN / "classifier-lora-remedy.yaml")
    demo = load_train_config(TRAIN / "classifier-lora.yaml")
    assert set(demo.lora.target_modules) - set(remedy.lora.target_modules) == {"up_proj", "down_proj"}
    assert remedy.lora.model_copy(update={"target_modules": demo.lora.target_modules}) == demo.lora
    assert remedy.training.model_copy(update={"save_steps": None}) == demo.training
    # Its checkpoints (the trainer also saves the last step) are what suites/remedy.yaml sweeps.
    folder = remedy.output_path / "checkpoints"
    steps = sorted(int(p.name.split("-")[1]) for p in folder.iterdir())
    assert remedy.training.save_steps is not None and steps == [114, 228, 342, 454]  # and the last step
    names = [c.name for c in load_suite(REPO / "suites" / "remedy.yaml").candidates]
    assert names == ["base", "lora", "remedy", *(f"remedy-curve-step-{step}" for step in steps)]


def test_the_replay_recipe_is_the_remedy_with_general_text_mixed_in() -> None:
    # The one change from the remedy is the replay text, so the suite compares them in isolation.
    replay = load_train_config(TRAIN / "classifier-lora-replay.yaml")
    remedy = load_train_config(TRAIN / "classifier-lora-remedy.yaml")
    assert replay.lora == remedy.lora and replay.data == remedy.data and remedy.replay is None
    assert replay.training.model_copy(update={"save_steps": None}) == remedy.training.model_copy(
        update={"save_steps": None})
    handbook = REPO / "data" / "replay" / "handbook.jsonl"
    assert replay.replay_data_path == handbook
    manifest = read_manifest(replay.output_path)
    assert manifest is not None and Path(manifest.replay_path) == handbook
    assert (manifest.replay_sha256, manifest.replay_examples) == (file_sha256(handbook), 256)
    folder = replay.output_path / "checkpoints"
    steps = sorted(int(p.name.split("-")[1]) for p in folder.iterdir())
    assert steps == [130, 260, 390, 518]  # every save_steps, and the last step (2 epochs of 259 batches)
    names = [c.name for c in load_suite(REPO / "suites" / "replay.yaml").candidates]
    assert names == ["base", "remedy", "replay", *(f"replay-curve-step-{step}" for step in steps)]


def test_no_shipped_adapter_or_checkpoint_names_a_machine_path() -> None:
    # peft writes the base's local directory (this machine's cache) into adapter_config.json;
    # training rewrites it to the base's source name, checkpoints included.
    configs = sorted((Path(__file__).resolve().parents[2] / "train").glob("**/adapter_config.json"))
    assert len(configs) >= 7, configs  # three adapters, the curve's final adapter and its four checkpoints
    named = {str(path): json.loads(path.read_text())["base_model_name_or_path"] for path in configs}
    assert all(not Path(base).is_absolute() for base in named.values()), named
