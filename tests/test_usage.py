"""Tokens, latency and cost per candidate: exact token counts, the price table, usage bars."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evalkit.api import run_suite
from evalkit.bars.evaluate import BarSpec, evaluate_bar
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model
from evalkit.suite.config import GenerationConfig
from evalkit.usage.stage import DEFAULT_PRICES, GenerationUsage, PriceSpec, UsageMeter, find_price
from tests.conftest import SuiteWriter

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Classify this customer message"}],
    [{"role": "user", "content": "Where is my package? It has been a week and nobody answers."}],
]


def test_token_counts_are_the_tokenizers_own(tiny_model_dir: Path) -> None:
    backend = HFBackend(device=torch.device("cpu"))
    variant = ModelVariant(resolve_model(str(tiny_model_dir)))
    settings = GenerationConfig(max_new_tokens=9, batch_size=2)
    completions = backend.generate(variant, CONVERSATIONS, settings)
    usage = backend.last_usage
    assert len(usage) == len(CONVERSATIONS)
    with backend.active(variant) as (model, tokenizer):
        for conversation, completion, used in zip(CONVERSATIONS, completions, usage, strict=True):
            assert used is not None
            ids = tokenizer(backend.render_prompt(variant, conversation), add_special_tokens=False)["input_ids"]
            assert used.prompt_tokens == len(ids)
            # One item alone, generated again: its new tokens before the end-of-sequence token.
            out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=9, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            new = out[0, len(ids):].tolist()
            expected = new.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in new else len(new)
            assert used.completion_tokens == expected
            assert tokenizer.decode(new[:expected], skip_special_tokens=True).strip() == completion
            assert used.seconds > 0 and used.first_token_seconds is not None
            # A batch share is the batch's time over its rows; the first token is the batch's own:
            # it comes within the batch's time, not within one row's share of it.
            assert 0 < used.first_token_seconds <= used.seconds * settings.batch_size


def test_meter_summary_costs_from_the_price_table() -> None:
    meter = UsageMeter()
    meter.record(["a", "b"], type("B", (), {"last_usage": [GenerationUsage(100, 20, 0.5, 0.1),
                                                           GenerationUsage(300, 40, 0.5, 0.1)]})(), 0.5)
    meter.record(["c"], type("B", (), {"last_usage": [GenerationUsage(200, 30, 1.5, 0.2)]})(), 1.5)
    price = ("mine", PriceSpec(input_per_million=2.0, output_per_million=10.0, per_hour=3.6))
    summary = meter.summary(n_items=4, price=price)
    assert summary.prompt_tokens == 600 and summary.completion_tokens == 90
    assert summary.measured_items == 3 and summary.items == 4
    assert summary.tokens_per_second == pytest.approx(90 / 2.0)
    cost = 600 * 2.0 / 1e6 + 90 * 10.0 / 1e6 + 2.0 / 3600 * 3.6
    assert summary.cost == pytest.approx(cost)
    assert summary.cost_per_1k_items == pytest.approx(cost / 3 * 1000)
    assert summary.latency_p50 == 0.5 and summary.latency_p95 == pytest.approx(1.4)
    # No price: no money figure, never a made-up zero.
    assert meter.summary(4, None).cost is None


def test_price_lookup_prefers_the_suite_then_the_candidate_then_the_longest_glob() -> None:
    assert find_price("judge", "gpt-4o-mini-2024") == ("gpt-4o-mini*", DEFAULT_PRICES["gpt-4o-mini*"])
    own = {"gpt-4o*": PriceSpec(input_per_million=1.0), "lora": PriceSpec(per_hour=2.0)}
    assert find_price("judge", "gpt-4o-mini-2024", own) == ("gpt-4o*", own["gpt-4o*"])
    assert find_price("lora", "gpt-4o-mini", own) == ("lora", own["lora"])
    assert find_price("local", "/models/smollm2") is None


def test_run_records_usage_and_bars_on_latency_and_cost(make_suite: SuiteWriter, tiny_model_dir: Path) -> None:
    suite = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)}],
        prices={"base": {"input_per_million": 1.0, "output_per_million": 4.0, "per_hour": 0.5}},
        bars=[{"base": "latency_p95 <= 60s"}, {"base": "cost_per_1k_items <= 0.5"},
              {"base": "latency_p50 <= 1ms"}, {"base": "tokens_per_second >= 0.001"}],
    )
    run = run_suite(suite, write=False)
    usage = run.sections["usage"]["base"]
    assert usage["measured_items"] == 3 and usage["prompt_tokens"] > 0
    expected_cost = (usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 4.0) / 1e6 \
        + usage["seconds"] / 3600 * 0.5
    assert usage["cost"] == pytest.approx(expected_cost, rel=1e-3)
    assert usage["price"] == "base" and usage["currency"] == "USD"
    statuses = [bar["status"] for bar in run.sections["bars"]]
    assert statuses == ["passed", "passed", "failed", "passed"]
    # Run again: everything comes from the generation cache, so latency is not measured.
    cached = run_suite(suite, write=False)
    assert cached.sections["usage"]["base"]["measured_items"] == 0
    result = evaluate_bar(BarSpec.of("base", "latency_p95 <= 2s"), cached)
    assert result.status == "failed" and "--no-cache" in result.message


def test_usage_bars_parse_units_and_reject_other_forms(make_suite: SuiteWriter, tiny_model_dir: Path) -> None:
    assert BarSpec.of("base", "latency_p95 <= 2s").value == 2.0
    assert BarSpec.of("base", "latency_p95 <= 250ms").value == pytest.approx(0.25)
    from evalkit.errors import ConfigError
    from evalkit.suite.config import load_suite

    with pytest.raises(ConfigError, match="usage figure"):
        load_suite(make_suite(candidates=[{"name": "base", "model": str(tiny_model_dir)},
                                          {"name": "other", "model": str(tiny_model_dir)}],
                              bars=[{"other": "latency_p95 max_drop 3%"}]))


def test_a_batch_share_is_labelled_and_tokens_per_second_is_over_what_the_batch_decoded() -> None:
    # A batch of two rows that ran 20 decoding steps in 4 s: one row stopped after 5 tokens.
    rows = [GenerationUsage(10, 5, 2.0, 0.1, latency_source="batch_share", decoded_tokens=20.0),
            GenerationUsage(10, 20, 2.0, 0.1, latency_source="batch_share", decoded_tokens=20.0)]
    meter = UsageMeter()
    meter.record(["a", "b"], type("HF", (), {"last_usage": rows})(), 4.0)
    summary = meter.summary(2, None)
    assert summary.latency_source == "batch_share"
    assert summary.latency_p50 == 2.0                  # 4 s over 2 items, not 4 s each
    assert summary.tokens_per_second == 40 / 4.0       # 2 rows x 20 steps, over the batch's time
    # A backend that reports nothing: each item gets its share of the chunk, labelled so.
    silent = UsageMeter()
    silent.record(["a", "b", "c", "d"], object(), 2.0)
    assert {u.seconds for u in silent.per_item.values()} == {0.5}
    assert silent.summary(4, None).latency_source == "batch_share"
    # Per-request figures beside batch shares: said to be mixed.
    mixed = UsageMeter()
    mixed.record(["a"], type("V", (), {"last_usage": [GenerationUsage(1, 1, 0.3, latency_source="per_request")]})(),
                 0.3)
    mixed.record(["b"], object(), 0.3)
    assert mixed.summary(2, None).latency_source == "mixed"


def test_the_hf_backend_labels_its_latency_a_batch_share(tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    backend = HFBackend()
    conversations = [[{"role": "user", "content": f"ticket {n}"}] for n in range(4)]
    backend.generate(ModelVariant(model=resolve_model(str(tiny_model_dir))), conversations,
                     GenerationConfig(max_new_tokens=5, batch_size=2))
    usage = backend.last_usage
    assert all(u is not None and u.latency_source == "batch_share" for u in usage)
    assert all(u is not None and u.decoded_tokens is not None and u.decoded_tokens >= (u.completion_tokens or 0)
               for u in usage)


def test_the_report_labels_a_batched_runs_latency_as_a_batch_share(make_suite: SuiteWriter) -> None:
    from evalkit.report.failures import cost_view

    run = run_suite(make_suite(generation={"max_new_tokens": 4, "batch_size": 2}), write=False)
    assert run.sections["usage"]["base"]["latency_source"] == "batch_share"
    view = cost_view(run)
    assert view is not None
    (row,) = view.rows
    assert row["p50"].endswith("(batch share)") and row["p95"].endswith("(batch share)")
