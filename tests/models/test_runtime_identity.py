"""Cache keys from what actually runs: resolved dtype and device, decoding files, the served model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from scripted_server import ScriptedServer

from evalkit.errors import ModelError
from evalkit.models import backend as models_backend
from evalkit.models.backend import ModelVariant
from evalkit.models.openai_server import served_identity
from evalkit.models.sources import hosted_model, model_fingerprint, resolve_model
from evalkit.store import generation_key
from evalkit.suite.config import GenerationConfig

MESSAGES = [{"role": "user", "content": "hi"}]
SETTINGS = GenerationConfig(max_new_tokens=8)


def key_for(variant: ModelVariant, backend: str = "hf") -> str:
    identity = models_backend.runtime_identity(backend, variant)
    return generation_key(model_fingerprint=variant.model.fingerprint, prompt_format="p", adapter_hash=None,
                          backend=backend, runtime=identity, options=dict(variant.options), messages=MESSAGES,
                          settings=SETTINGS)


def test_auto_is_keyed_as_what_it_resolves_to(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = resolve_model(str(tiny_model_dir))
    auto, fp32 = ModelVariant(model, dtype="auto"), ModelVariant(model, dtype="float32")
    monkeypatch.setattr(models_backend, "device_kind", lambda: "cpu")
    assert models_backend.runtime_identity("hf", auto) == {"device": "cpu", "dtype": "float32"}
    assert key_for(auto) == key_for(fp32)  # the same thing runs: one cache entry
    on_cpu = key_for(auto)
    # The same suite on a GPU runs bf16 on cuda: another key, never the CPU's completions.
    monkeypatch.setattr(models_backend, "device_kind", lambda: "cuda")
    assert models_backend.runtime_identity("vllm", auto) == {"device": "cuda", "dtype": "bfloat16"}
    assert key_for(auto) != on_cpu
    assert key_for(fp32) != on_cpu  # same dtype, other device


def test_the_hf_backend_resolves_dtype_by_the_same_rule() -> None:
    import torch

    from evalkit.models.hf import pick_dtype

    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert models_backend.resolve_dtype("auto", "cpu") == "float32" and models_backend.resolve_dtype("float16", "cpu") == "float16"


@pytest.mark.parametrize("name, change", [
    ("generation_config.json", lambda d: {**d, "temperature": 0.7}),
    ("tokenizer_config.json", lambda d: {**d, "model_max_length": 7}),
    ("special_tokens_map.json", lambda d: {**d, "pad_token": "<pad2>"}),
])
def test_generation_config_and_tokenizer_files_change_the_fingerprint(
        tiny_model_dir: Path, tmp_path: Path, name: str, change: Any) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    before = model_fingerprint(copy)
    path = copy / name
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps(change(data)))
    after = model_fingerprint(copy)
    assert after != before
    assert key_for(ModelVariant(resolve_model(str(copy)))) != key_for(ModelVariant(resolve_model(str(tiny_model_dir))))


def test_a_chat_template_file_changes_the_fingerprint(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    before = model_fingerprint(copy)
    (copy / "chat_template.jinja").write_text("{{ messages[0].content }}")
    assert model_fingerprint(copy) != before


def external(url: str, model: str = "served") -> ModelVariant:
    return ModelVariant(hosted_model(model, url), options={"base_url": url, "model": model})


def test_an_external_endpoint_is_keyed_by_what_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer({"served": {"root": "/weights/v1"}}) as server:
        variant = external(server.url + "/v1")
        first = served_identity(variant)
        assert first["served"]["id"] == "served" and first["served"]["root"] == "/weights/v1"
        assert "created" not in first["served"]  # the time of the answer is no identity
        key_v1 = key_for(variant, "openai_server")
        assert key_for(variant, "openai_server") == key_v1  # stable while the server serves the same
        # Restarted on other weights under the same name: another key.
        server.models["served"] = {"root": "/weights/v2"}
        assert key_for(variant, "openai_server") != key_v1
        server.models["served"] = {"root": "/weights/v1", "system_fingerprint": "fp_2"}
        assert key_for(variant, "openai_server") != key_v1
        with pytest.raises(ModelError, match="does not serve model 'missing'.*served"):
            served_identity(external(server.url + "/v1", "missing"))


def test_runner_keys_external_endpoints_by_served_identity_not_local_hashes(
        make_suite: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.api import run_suite

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer({"served": {"root": "/weights/v1"}}) as server:
        candidate = {"name": "remote", "model": "served", "backend": "openai_server",
                     "options": {"base_url": server.url + "/v1"}}
        suite = make_suite(candidates=[candidate], generation={"max_new_tokens": 4, "batch_size": 2})
        store = tmp_path / "runs.db"
        run_suite(suite, store=store, write=False)
        calls = sum(r.path.endswith("/chat/completions") for r in server.requests)
        run_suite(suite, store=store, write=False)
        assert sum(r.path.endswith("/chat/completions") for r in server.requests) == calls  # cached
        server.models["served"] = {"root": "/weights/v2"}
        run_suite(suite, store=store, write=False)
        assert sum(r.path.endswith("/chat/completions") for r in server.requests) == 2 * calls  # regenerated
