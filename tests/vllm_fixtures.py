"""Models, adapters and engines shared by the vLLM, server and parity tests.

vLLM's CPU attention needs a head size of at least 32, so the tiny Llama here has a
hidden size of 128 (4 heads). Everything is built once per test process (``lru_cache``):
one engine per session, as the tests' time budget requires.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from evalkit.models.backend import ModelVariant
from evalkit.models.sources import resolve_model
from evalkit.testing.tiny_model import build_tiny_llama


@dataclass(frozen=True)
class TinyVLLMModels:
    """A tiny base model, adapters on it and a merged model, on disk."""

    base: Path
    lora: Path  # random non-zero LoRA: changes outputs
    noop: Path  # LoRA with zero B matrices: changes nothing
    merged: Path  # base with ``lora`` merged in

    def variant(self, adapter: str | None = None) -> ModelVariant:
        model = resolve_model(str(self.base))
        if adapter is None:
            return ModelVariant(model)
        return ModelVariant(model, getattr(self, adapter), adapter)

    def merged_variant(self) -> ModelVariant:
        return ModelVariant(resolve_model(str(self.merged)))


def make_lora(base: Path, out: Path, *, random_init: bool, rank: int = 8, seed: int = 0) -> Path:
    """Save a LoRA adapter on ``base``: random A and B (``random_init``) or peft's zero B."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj", "o_proj"],
                        init_lora_weights=not random_init)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def merge_lora(base: Path, adapter: Path, out: Path) -> Path:
    """Merge ``adapter`` into ``base`` and save the result with the base's tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), str(adapter))
    merged.merge_and_unload().save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    return out


@lru_cache(maxsize=1)
def tiny_vllm_models() -> TinyVLLMModels:
    """Build (once per process) the tiny model, its adapters and its merged model."""
    root = Path(tempfile.mkdtemp(prefix="evalkit-vllm-tests-"))
    atexit.register(shutil.rmtree, root, True)
    base = build_tiny_llama(root / "base", layers=2, hidden=128)
    lora = make_lora(base, root / "lora", random_init=True)
    noop = make_lora(base, root / "noop", random_init=False)
    merged = merge_lora(base, lora, root / "merged")
    return TinyVLLMModels(base=base, lora=lora, noop=noop, merged=merged)


@lru_cache(maxsize=1)
def shared_vllm_backend():  # type: ignore[no-untyped-def]
    """The one VLLMBackend of the test session (its engine starts on first use)."""
    from evalkit.models.vllm import VLLMBackend

    backend = VLLMBackend()
    atexit.register(backend.close)
    return backend


@lru_cache(maxsize=1)
def shared_hf_backend():  # type: ignore[no-untyped-def]
    """The one HFBackend of the vLLM test session."""
    from evalkit.models.hf import HFBackend

    return HFBackend()
