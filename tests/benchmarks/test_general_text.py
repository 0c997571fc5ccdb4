"""The evalkit_general_text probe: a vendored corpus scored by lm-eval's rolling log-likelihood.

Fast tests on the tiny random model: the task runs through lm-eval's own machinery
(``simple_evaluate``, ``loglikelihood_rolling``) and each document's bits per byte equals a
direct computation with transformers (summed token NLL / UTF-8 bytes / ln 2); rolling
windows longer than the context match lm-eval's ``hf`` model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from evalkit.benchmarks.evaluate import evaluate_benchmark, item_value, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import (
    CORPUS_DIR,
    GENERAL_TEXT_GENRES,
    load_corpus,
    select_documents,
)
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.runner import execute_suite
from evalkit.suite.config import load_suite


def test_corpus_is_vendored_with_its_licences_and_sources() -> None:
    documents = load_corpus()
    assert {d.genre for d in documents} == set(GENERAL_TEXT_GENRES)
    assert 60 <= len(documents) <= 120
    assert len({d.id for d in documents}) == len(documents)
    for document in documents:
        assert 120 <= len(document.text.split()) <= 420, document.id
        assert document.source
    readme = (CORPUS_DIR / "README.md").read_text()
    for name in ("jargon-text", "chatterbot-corpus", "pydoc_data"):
        assert name in readme
    licences = {p.name for p in (CORPUS_DIR / "LICENSES").iterdir()}
    assert {"PSF-2.0.txt", "BSD-3-Clause-chatterbot-corpus.txt", "jargon-file-public-domain.txt"} <= licences


def test_documents_interleave_genres_so_a_limit_keeps_every_genre() -> None:
    chosen = select_documents(load_corpus(), None)
    assert [d.genre for d in chosen[:3]] == list(GENERAL_TEXT_GENRES)
    only = select_documents(load_corpus(), ["dialogue"])
    assert only and {d.genre for d in only} == {"dialogue"}


def test_spec_takes_genres_only_for_general_text() -> None:
    assert BenchmarkSpec(task="evalkit_general_text", genres=["essay"]).genres == ["essay"]
    with pytest.raises(ValueError, match="unknown genre 'poetry'"):
        BenchmarkSpec(task="evalkit_general_text", genres=["poetry"])
    with pytest.raises(ValueError, match="genres: only for 'evalkit_general_text'"):
        BenchmarkSpec(task="wikitext", genres=["essay"])
    with pytest.raises(ValueError, match="num_fewshot: not for 'evalkit_general_text'"):
        BenchmarkSpec(task="evalkit_general_text", num_fewshot=2)


def test_item_value_is_lm_evals_aggregate_over_one_document() -> None:
    assert item_value("bits_per_byte", (-math.log(2) * 50, 100)) == pytest.approx(0.5)
    assert item_value("byte_perplexity", [-10.0, 10]) == pytest.approx(math.e)
    assert item_value("acc", 1) == 1.0
    with pytest.raises(BenchmarkError, match="not a number"):
        item_value("acc", "yes")


def _direct_bits_per_byte(model: torch.nn.Module, tokenizer: object, text: str, prefix_id: int) -> float:
    """Summed token NLL of ``text`` (the first token given the prefix token) / bytes / ln 2, in one pass."""
    ids = [prefix_id, *tokenizer.encode(text, add_special_tokens=False)]  # type: ignore[attr-defined]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
    return nll / len(text.encode("utf-8")) / math.log(2)


def test_task_runs_through_lm_eval_and_matches_a_direct_computation(
    tiny_backend: HFBackend, tiny_variant: ModelVariant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path))
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_general_text", limit=6), tmp_path)
    # One window per document (the tiny tokenizer's small vocabulary makes long token lists;
    # windows longer than the context are checked against lm-eval's hf model below).
    lm = EvalkitLM(tiny_backend, tiny_variant, batch_size=4, max_length=4096)
    outcome = evaluate_benchmark(task, lm)

    assert outcome.metric == "bits_per_byte" and outcome.higher_is_better is False
    documents = {d.id: d for d in select_documents(load_corpus(), None)[:6]}
    assert set(outcome.items) == set(documents)
    assert set(outcome.subjects) == set(GENERAL_TEXT_GENRES)
    loaded = tiny_backend.load(tiny_variant)
    for item_id, value in outcome.items.items():
        expected = _direct_bits_per_byte(loaded.model, loaded.tokenizer, documents[item_id].text, lm.prefix_token_id)
        assert value == pytest.approx(expected, rel=1e-4), item_id
    assert outcome.acc == pytest.approx(sum(outcome.items.values()) / 6)
    # lm-eval's own corpus-level aggregates, beside the per-document mean
    total_bytes = sum(len(d.text.encode()) for d in documents.values())
    corpus_bpb = sum(outcome.items[i] * len(d.text.encode()) for i, d in documents.items()) / total_bytes
    assert outcome.lm_eval_scores["bits_per_byte"] == pytest.approx(corpus_bpb, rel=1e-4)
    assert outcome.lm_eval_scores["byte_perplexity"] == pytest.approx(2 ** corpus_bpb, rel=1e-4)
    assert set(outcome.lm_eval_scores) >= {"word_perplexity", "byte_perplexity", "bits_per_byte"}
    data = [json.loads(line) for line in (task.include_path / "data.jsonl").read_text().splitlines()]
    assert [row["id"] for row in data[:3]] == ["essay/00", "reference/00", "dialogue/00"]


def test_rolling_windows_longer_than_the_context_match_lm_evals_hf(
    tiny_backend: HFBackend, tiny_variant: ModelVariant,
) -> None:
    loaded = tiny_backend.load(tiny_variant)
    ours = EvalkitLM(tiny_backend, tiny_variant, batch_size=3, max_length=16)
    reference = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=2, device="cpu", max_length=16)
    texts = [load_corpus()[0].text[:600], "A short one.", load_corpus()[-1].text[:300]]
    assert len(ours.tok_encode(texts[0])) > 3 * 16  # several windows
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    assert ours.loglikelihood_rolling(requests) == pytest.approx(reference.loglikelihood_rolling(requests), rel=1e-4)


def test_suite_runs_the_probe_end_to_end_with_its_direction_declared(
    make_suite: Any, tiny_model_dir: Path, tmp_path: Path,
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    adapter = tmp_path / "lora"
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(str(adapter))
    suite_file = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter)}],
        benchmarks=[{"task": "evalkit_general_text", "name": "general_text", "limit": 6, "max_drop": "3%"}],
        bars=[{"lora": "general_text max_drop 3%"}],
    )
    run = execute_suite(load_suite(suite_file))
    assert run.sections["metric_kinds"]["general_text"] == {"kind": "continuous", "higher_is_better": False}
    base_entry, lora_entry = (run.sections["benchmarks"][name]["general_text"] for name in ("base", "lora"))
    assert base_entry["higher_is_better"] is False and base_entry["metric"] == "bits_per_byte"
    assert set(base_entry["lm_eval_scores"]) >= {"word_perplexity", "byte_perplexity", "bits_per_byte"}
    assert set(base_entry["subjects"]) == set(GENERAL_TEXT_GENRES) and base_entry["n"] == 6
    assert lora_entry["vs_baseline"]["higher_is_better"] is False
    assert lora_entry["vs_baseline"]["detectable_drop"] > 0
    compared = run.sections["comparison"]["candidates"]["lora"]["metrics"]["general_text"]
    assert compared["higher_is_better"] is False and compared["kind"] == "continuous"
    (bar,) = run.sections["bars"]
    expected = {"regressed": "failed", "improved": "passed", "no_change": "passed"}.get(compared["verdict"],
                                                                                        "inconclusive")
    assert bar["status"] == expected
    # A rise beyond the allowed 3% with the whole interval above it is exactly when the bar fails.
    allowed = 0.03 * compared["baseline_value"]
    assert (bar["status"] == "failed") == (compared["ci_low"] > allowed and compared["p_value"] < 0.05)


def test_rolling_documents_get_a_row_each_while_short_answers_share_their_context() -> None:
    from evalkit.benchmarks.lm import pack_requests

    prefix = [0]
    documents = [(("", ""), prefix, list(range(1, 300))), (("", ""), prefix, list(range(300, 700)))]
    rows = pack_requests(documents, max_length=2048)
    assert len(rows) == 2 and all(row.length <= 400 for row in rows)  # never one 700-token row
    question = list(range(100, 180))
    answers = [(("q", "a"), question, [i, i + 1, i + 2]) for i in (900, 910, 920, 930)]
    (shared,) = pack_requests(answers, max_length=2048)
    assert len(shared.requests) == 4
