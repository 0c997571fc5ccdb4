from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evalkit.errors import ModelError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model
from evalkit.suite.config import GenerationConfig

PROMPTS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Classify this customer message please"}],
    [{"role": "user", "content": "Where is my package? It has been a week and nobody answers."}],
]


def make_adapter(base_dir: Path, out: Path, seed: int) -> Path:
    """A random (non-zero) LoRA adapter on the tiny model, saved with peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def backend() -> HFBackend:
    return HFBackend(device=torch.device("cpu"))


def test_batched_equals_one_by_one_and_keeps_order(backend: HFBackend, tiny_model_dir: Path) -> None:
    variant = ModelVariant(resolve_model(str(tiny_model_dir)))
    batched = backend.generate(variant, PROMPTS, GenerationConfig(max_new_tokens=10, batch_size=3))
    single = [backend.generate(variant, [p], GenerationConfig(max_new_tokens=10))[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) > 1, "different prompts should give different outputs"


def test_progress_reports_every_item(backend: HFBackend, tiny_model_dir: Path) -> None:
    variant = ModelVariant(resolve_model(str(tiny_model_dir)))
    seen: list[int] = []
    backend.generate(variant, PROMPTS, GenerationConfig(max_new_tokens=2, batch_size=2), seen.append)
    assert sum(seen) == len(PROMPTS) and len(seen) == 2


def test_render_prompt_applies_chat_template(backend: HFBackend, tiny_model_dir: Path) -> None:
    text = backend.render_prompt(ModelVariant(resolve_model(str(tiny_model_dir))), PROMPTS[0])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_adapters_share_one_base_and_switch(tiny_model_dir: Path, tmp_path: Path) -> None:
    backend = HFBackend(device=torch.device("cpu"))
    model = resolve_model(str(tiny_model_dir))
    first = make_adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    second = make_adapter(tiny_model_dir, tmp_path / "a2", seed=2)
    settings = GenerationConfig(max_new_tokens=10)
    base_before = backend.generate(ModelVariant(model), PROMPTS, settings)
    out_a = backend.generate(ModelVariant(model, first, "a1"), PROMPTS, settings)
    out_b = backend.generate(ModelVariant(model, second, "a2"), PROMPTS, settings)
    base_after = backend.generate(ModelVariant(model), PROMPTS, settings)
    assert out_a != base_before and out_b != out_a
    assert base_after == base_before, "disabling the adapters must give the base model back"
    assert len(backend._bases) == 1, "one copy of the base weights for every variant"
    # The adapter evaluated alone, on a fresh backend, matches the shared-base result.
    alone = HFBackend(device=torch.device("cpu")).generate(ModelVariant(model, second, "a2"), PROMPTS, settings)
    assert alone == out_b


def test_an_adapter_named_with_a_dot_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    # peft refuses "." in an adapter's name; candidate and directory names often have one.
    model = resolve_model(str(tiny_model_dir))
    adapter = make_adapter(tiny_model_dir, tmp_path / "lora-v1.2", seed=3)
    settings = GenerationConfig(max_new_tokens=10)
    dotted = HFBackend(device=torch.device("cpu")).generate(ModelVariant(model, adapter, "lora-v1.2"), PROMPTS, settings)
    plain = HFBackend(device=torch.device("cpu")).generate(ModelVariant(model, adapter, "plain"), PROMPTS, settings)
    assert dotted == plain
    assert dotted != HFBackend(device=torch.device("cpu")).generate(ModelVariant(model), PROMPTS, settings)


def test_a_sweep_of_adapters_keeps_two_resident_and_reloads_an_evicted_one_unchanged(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    from evalkit.models.hf import MAX_RESIDENT_ADAPTERS

    backend = HFBackend(device=torch.device("cpu"))
    model = resolve_model(str(tiny_model_dir))
    adapters = [make_adapter(tiny_model_dir, tmp_path / f"c{i}", seed=10 + i) for i in range(4)]
    settings = GenerationConfig(max_new_tokens=8)
    first = [backend.generate(ModelVariant(model, path, path.name), PROMPTS, settings) for path in adapters]
    (base,) = backend._bases.values()
    # Only the two most recent adapters are in the PeftModel, whatever the number swept.
    assert MAX_RESIDENT_ADAPTERS == 2
    assert list(base.adapters) == ["c2", "c3"]
    assert set(base.peft_model.peft_config) == {"c2", "c3"}
    lora_layers = [n for n, _ in base.peft_model.named_parameters() if "lora_A" in n]
    assert {n.split(".lora_A.")[1].split(".")[0] for n in lora_layers} == {"c2", "c3"}
    # The evicted first checkpoint comes back from disk and answers exactly as before.
    again = backend.generate(ModelVariant(model, adapters[0], "c0"), PROMPTS, settings)
    assert again == first[0] and list(base.adapters) == ["c3", "c0"]
    assert len({tuple(outputs) for outputs in first}) == 4, "four different adapters, four different outputs"
    # Reloading outside inference mode (the benchmark path loads its variant there) works
    # although the resident adapters were made inside it, and scores as before.
    assert not torch.is_inference_mode_enabled()
    backend.load(ModelVariant(model, adapters[1], "c1"))
    assert list(base.adapters) == ["c0", "c1"]
    assert backend.generate(ModelVariant(model, adapters[1], "c1"), PROMPTS, settings) == first[1]
    # A name stays bound to its directory even after its adapter was evicted.
    with pytest.raises(ModelError, match="share the name 'c1'"):
        backend.generate(ModelVariant(model, adapters[2], "c1"), PROMPTS, settings)


def test_bad_adapter_directory(backend: HFBackend, tiny_model_dir: Path, tmp_path: Path) -> None:
    variant = ModelVariant(resolve_model(str(tiny_model_dir)), tmp_path, "bad")
    with pytest.raises(ModelError, match="no adapter_config.json"):
        backend.generate(variant, PROMPTS[:1], GenerationConfig(max_new_tokens=2))
