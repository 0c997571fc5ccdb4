"""`evalkit merge`: the merged model computes what base + adapter computes, and loads alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_fixtures import TrainedTiny
from transformers import AutoModelForCausalLM, AutoTokenizer

from evalkit.cli import main
from evalkit.errors import ModelError
from evalkit.models.hf import render_chat
from evalkit.models.sources import adapter_fingerprint
from evalkit.testing.tiny_model import build_tiny_llama
from evalkit.train.config import read_manifest
from evalkit.train.lora import merge_adapter


def test_merged_logits_equal_the_adapter_models(trained_tiny: TrainedTiny, tiny_model_dir: Path,
                                                 tmp_path: Path) -> None:
    from peft import PeftModel

    out = tmp_path / "merged"
    assert main(["merge", str(trained_tiny.adapter), "--out", str(out)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(str(out))  # the merged dir carries its tokenizer
    text = render_chat(tokenizer, [{"role": "user", "content": "Where is my parcel? Tracking is stuck."}])
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    adapted = PeftModel.from_pretrained(base, str(trained_tiny.adapter)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    with torch.no_grad():
        expected, got = adapted(**ids).logits, merged(**ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    manifest = read_manifest(out)
    assert manifest is not None and manifest.kind == "merged"
    assert manifest.adapter_hash == adapter_fingerprint(trained_tiny.adapter)
    assert manifest.base_fingerprint == trained_tiny.manifest.base_fingerprint


def test_merge_onto_another_base_is_refused(trained_tiny: TrainedTiny, tmp_path: Path) -> None:
    other = build_tiny_llama(tmp_path / "other", seed=1)
    with pytest.raises(ModelError, match="fingerprint"):
        merge_adapter(trained_tiny.adapter, tmp_path / "merged", model=str(other))
    assert not (tmp_path / "merged").exists()


def test_merge_of_a_missing_adapter_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")]) == 2
    assert "no adapter_config.json" in capsys.readouterr().err
