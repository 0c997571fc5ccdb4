"""A model's identity is what decides its behaviour, not how or where its files were saved.

Issue "holds", item 10: converting the embedded model with ``HF_HUB_OFFLINE=1`` wrote
``"local_files_only": true`` into the copy's tokenizer_config.json, the fingerprint hashed
that file, and the shipped demo adapter was judged stale (retrained for ~50 minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.models.sources import model_fingerprint
from evalkit.store.cache import prompt_format_fingerprint

REPO = Path(__file__).resolve().parents[2]


def _copy(model_dir: Path, target: Path) -> Path:
    shutil.copytree(model_dir, target)
    return target


def _rewrite_json(path: Path, change: dict[str, object]) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, **change}, indent=7))


def test_loader_flags_key_order_and_saving_version_are_not_the_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_model_dir, tmp_path / "model")
    before, prompt_before = model_fingerprint(copy), prompt_format_fingerprint(copy)
    _rewrite_json(copy / "tokenizer_config.json", {"local_files_only": True, "name_or_path": "/somewhere/else"})
    _rewrite_json(copy / "config.json", {"transformers_version": "0.0.1", "_name_or_path": "/elsewhere"})
    if (copy / "generation_config.json").is_file():
        _rewrite_json(copy / "generation_config.json", {"transformers_version": "0.0.1"})
    _rewrite_json(copy / "tokenizer.json", {"truncation": {"max_length": 7}})
    assert model_fingerprint(copy) == before
    assert prompt_format_fingerprint(copy) == prompt_before


def test_what_decides_behaviour_still_changes_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_model_dir, tmp_path / "model")
    before = model_fingerprint(copy)
    _rewrite_json(copy / "tokenizer_config.json", {"chat_template": "{{ messages[0].content }}"})
    assert model_fingerprint(copy) != before
    copy2 = _copy(tiny_model_dir, tmp_path / "model2")
    _rewrite_json(copy2 / "tokenizer_config.json", {"eos_token": "<other>"})
    assert model_fingerprint(copy2) != before


def test_the_same_tensors_saved_in_another_layout_are_the_same_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = _copy(tiny_model_dir, tmp_path / "model")
    before = model_fingerprint(copy)
    weights = next(copy.glob("*.safetensors"))
    tensors = load_file(str(weights))
    # Reverse the tensors' order in the file and change its metadata: same model.
    save_file(dict(reversed(list(tensors.items()))), str(weights), metadata={"format": "pt", "saved_by": "x"})
    assert weights.read_bytes() != (tiny_model_dir / weights.name).read_bytes()
    assert model_fingerprint(copy) == before
    name = next(iter(tensors))
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 1
    save_file(tensors, str(weights), metadata={"format": "pt"})
    assert model_fingerprint(copy) != before


def _convert_embedded(home: Path, offline: bool) -> str:
    env = {key: value for key, value in os.environ.items() if key not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}}
    env["EVALKIT_HOME"] = str(home)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    code = ("from evalkit.models.sources import resolve_model; "
            "print(resolve_model('smollm2-135m-instruct').fingerprint)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_embedded_model_has_one_fingerprint_online_or_offline_and_the_shipped_adapter_agrees(
        tmp_path: Path) -> None:
    # Two real conversions into empty homes, one with HF_HUB_OFFLINE=1 (as the tests and
    # offline GPU nodes run), one without: the copies' tokenizer_config.json differ, the
    # identities must not, and the shipped demo adapter's manifest must name that identity.
    online = _convert_embedded(tmp_path / "online", offline=False)
    offline = _convert_embedded(tmp_path / "offline", offline=True)
    saved = [json.loads((tmp_path / side / "models" / "smollm2-135m-instruct" / "tokenizer_config.json").read_text())
             for side in ("online", "offline")]
    assert saved[0].get("local_files_only") != saved[1].get("local_files_only")
    assert online == offline
    manifest = json.loads((REPO / "train" / "classifier-lora" / "evalkit-manifest.json").read_text())
    assert manifest["base_fingerprint"] == online
