from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalkit.errors import ModelError
from evalkit.models.sources import model_fingerprint, resolve_model


def test_local_directory_resolves_with_fingerprint(tiny_model_dir: Path) -> None:
    resolved = resolve_model(str(tiny_model_dir))
    assert resolved.path == tiny_model_dir
    assert len(resolved.fingerprint) == 64
    assert resolve_model(str(tiny_model_dir)).fingerprint == resolved.fingerprint


def test_relative_directory_resolves_against_base_dir(tiny_model_dir: Path) -> None:
    resolved = resolve_model(tiny_model_dir.name, base_dir=tiny_model_dir.parent)
    assert resolved.path == tiny_model_dir


def test_fingerprint_changes_when_weights_change(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    before = model_fingerprint(copy)
    assert before == model_fingerprint(tiny_model_dir)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != before


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("./no/such/dir", "does not exist; check the path"),
        ("missing.gguf", "GGUF file .* not found"),
        ("gpt-42", "not a known name, a directory, a .gguf file or a hub id"),
    ],
)
def test_unresolvable_sources_say_what_to_do(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_model(source, base_dir=tmp_path)


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_offline_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No network here: an offline hub lookup must become one clear ModelError.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="could not be fetched from the hub.*point `model:` at the directory"):
        resolve_model("someorg/some-model")


def test_embedded_model_resolves_to_cached_safetensors() -> None:
    resolved = resolve_model("smollm2-135m-instruct")
    assert (resolved.path / "model.safetensors").is_file()
    assert (resolved.path / "tokenizer.json").is_file()
    assert resolved.fingerprint == resolve_model("smollm2-135m-instruct").fingerprint
