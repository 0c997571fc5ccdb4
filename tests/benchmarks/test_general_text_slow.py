"""evalkit_general_text on real engines: the embedded SmolLM2 through lm-eval, and vLLM's rolling windows.

Slow: the first loads the embedded model (a few seconds) and scores six documents
(~1,700 tokens) to show the probe measures what a direct computation does on the model
the demo gates; the second starts the shared tiny vLLM engine to show the vLLM scorer's
rolling windows give the HF scorer's log-likelihoods, so either backend may run the probe.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import load_corpus, select_documents
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend


@pytest.mark.slow
def test_smollm2_bits_per_byte_match_a_direct_computation(
    smollm2_backend: HFBackend, smollm2_variant: ModelVariant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path))
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_general_text", limit=6), tmp_path)
    lm = EvalkitLM(smollm2_backend, smollm2_variant, batch_size=3)
    outcome = evaluate_benchmark(task, lm)
    loaded = smollm2_backend.load(smollm2_variant)
    documents = {d.id: d for d in select_documents(load_corpus(), None)[:6]}
    for item_id, value in outcome.items.items():
        ids = [lm.prefix_token_id, *loaded.tokenizer.encode(documents[item_id].text, add_special_tokens=False)]
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
        assert value == pytest.approx(nll / len(documents[item_id].text.encode()) / math.log(2), rel=1e-4)
    # A small English model: about one bit per byte on human-written English (a random one: ~15).
    assert 0.5 < outcome.acc < 1.6, outcome.acc
    print(f"SmolLM2 on 6 documents: mean bits per byte {outcome.acc:.4f}; lm-eval: {outcome.lm_eval_scores}")


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_rolling_loglikelihoods_match_the_hf_scorer() -> None:
    from lm_eval.api.instance import Instance

    from evalkit.benchmarks.lm import EvalkitVLLM
    from tests.vllm_fixtures import shared_hf_backend, shared_vllm_backend, tiny_vllm_models

    models = tiny_vllm_models()
    texts = [d.text for d in select_documents(load_corpus(), None)[:3]]
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    for variant in (models.variant(), models.variant("lora")):
        on_vllm = EvalkitVLLM(shared_vllm_backend(), variant)
        on_hf = EvalkitLM(shared_hf_backend(), variant, dtype="float32")
        assert on_vllm.loglikelihood_rolling(requests) == pytest.approx(on_hf.loglikelihood_rolling(requests),
                                                                         rel=1e-3)


@pytest.mark.slow
def test_a_suite_on_vllm_scores_its_probe_on_the_engine_as_hf_would(make_suite: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``scorer: vllm`` scores a suite's probe on the run's engine, as ``scorer: hf`` does on transformers."""
    from evalkit.models.vllm import VLLMBackend
    from evalkit.runner import execute_suite
    from evalkit.suite.config import load_suite
    from tests.vllm_fixtures import tiny_vllm_models

    engines: list[tuple[str | None, dict[str, Any]]] = []  # (adapter name, engine options) per engine asked for
    real_engine = VLLMBackend.engine

    def recorded(self: VLLMBackend, variant: ModelVariant) -> Any:
        engines.append((variant.adapter_name, dict(variant.options)))
        return real_engine(self, variant)

    monkeypatch.setattr(VLLMBackend, "engine", recorded)
    models = tiny_vllm_models()
    options = {"max_model_len": 1024}
    candidates = [{"name": "base", "model": str(models.base), "backend": "vllm", "options": options},
                  {"name": "lora", "model": str(models.base), "backend": "vllm", "adapter": str(models.lora),
                   "options": options}]
    probe = {"task": "evalkit_general_text", "name": "general_text", "limit": 3}
    runs = {scorer: execute_suite(load_suite(make_suite(candidates=candidates, benchmarks=[dict(probe, scorer=scorer)])))
            for scorer in ("vllm", "hf")}
    for name in ("base", "lora"):
        on_vllm, on_hf = (runs[s].section("benchmarks")[name]["general_text"] for s in ("vllm", "hf"))
        assert (on_vllm.scorer, on_hf.scorer) == ("evalkit-vllm", "evalkit-hf")
        values = {s: runs[s].candidate(name).item_values["general_text"] for s in ("vllm", "hf")}
        assert values["vllm"] == pytest.approx(values["hf"], rel=1e-3) and len(values["hf"]) == 3
    # the adapter changed the scores on both scorers: each scored the lora as the lora
    assert runs["vllm"].candidate("lora").item_values != runs["vllm"].candidate("base").item_values
    # scoring asked for the engine generation started, with the candidates' engine options
    assert engines and all(asked == options for _, asked in engines)
