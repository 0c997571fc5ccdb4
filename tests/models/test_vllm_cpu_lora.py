"""The copy-free CPU LoRA ops give vLLM's own PyTorch-native ops' results, by either strategy."""

from __future__ import annotations

import pytest
import torch

# vLLM is installed by `make test`; a missing vLLM fails here rather than skipping.
from vllm.lora.ops.torch_ops import lora_ops

from evalkit.models import vllm as vllm_cpu_lora  # the CPU LoRA ops live in the vLLM backend module

TOKENS, HIDDEN, RANK, SLOTS = 37, 24, 8, 4


@pytest.fixture(autouse=True, params=["all-slots", "per-slot"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with each way of computing the products (chosen by size in use)."""
    monkeypatch.setattr(vllm_cpu_lora, "ALL_SLOTS_LIMIT", 1 << 40 if request.param == "all-slots" else 0)
    return str(request.param)


def test_the_size_rule_picks_all_slots_for_decoding_and_per_slot_for_prefill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real limit, not the fixture's
    calls: list[str] = []
    for name in ("all_slot_products", "per_slot_products"):
        original = getattr(vllm_cpu_lora, name)
        monkeypatch.setattr(vllm_cpu_lora, name,
                            lambda *a, _n=name, _o=original: calls.append(_n) or _o(*a))
    weights = torch.randn(4, 1, 16, 576)  # 4 slots, rank 16, SmolLM2's hidden size
    vllm_cpu_lora.adapter_products(torch.randn(8, 576), weights, torch.arange(8) % 4, torch.float32)
    vllm_cpu_lora.adapter_products(torch.randn(16, 16), weights.transpose(2, 3), torch.arange(16) % 4,
                                   torch.float32)
    vllm_cpu_lora.adapter_products(torch.randn(4096, 16), weights.transpose(2, 3), torch.arange(4096) % 4,
                                   torch.float32)
    assert calls == ["all_slot_products", "all_slot_products", "per_slot_products"]


def _indices() -> torch.Tensor:
    # Mixed adapters, including vLLM's -1 ("no adapter").
    return torch.tensor([(t % 5) - 1 for t in range(TOKENS)])


def _with_empty_last_slot(weights: torch.Tensor) -> torch.Tensor:
    # vLLM's own ops read -1 as the last slot; they are right only while it is empty.
    weights[-1].zero_()
    return weights


def test_no_adapter_rows_get_nothing_even_when_every_slot_holds_an_adapter() -> None:
    torch.manual_seed(5)
    x = torch.randn(TOKENS, HIDDEN)
    weights = torch.randn(SLOTS, 1, RANK, HIDDEN)  # the last slot is not empty
    out = torch.zeros(TOKENS, RANK)
    vllm_cpu_lora.bgmv_shrink(x, weights, out, _indices(), 1.0)
    base_rows = _indices() < 0
    assert base_rows.any() and (~base_rows).any()
    assert torch.count_nonzero(out[base_rows]) == 0
    assert torch.count_nonzero(out[~base_rows]) == out[~base_rows].numel()


@pytest.mark.parametrize("four_dims", [True, False])
def test_shrink_matches_vllm(four_dims: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(TOKENS, HIDDEN)
    weights = _with_empty_last_slot(torch.randn(SLOTS, 1, RANK, HIDDEN) if four_dims
                                     else torch.randn(SLOTS, RANK, HIDDEN))
    expected, actual = torch.zeros(TOKENS, RANK), torch.zeros(TOKENS, RANK)
    # vLLM's original function, not the module attribute (install_cpu_lora_ops() may have replaced that)
    lora_ops_original = _original("bgmv_shrink")
    lora_ops_original(x, weights, expected, _indices(), 0.5)
    vllm_cpu_lora.bgmv_shrink(x, weights, actual, _indices(), 0.5)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_and_expand_slice_match_vllm(add_inputs: bool) -> None:
    torch.manual_seed(1)
    x = torch.randn(TOKENS, RANK)
    weights = _with_empty_last_slot(torch.randn(SLOTS, 1, HIDDEN, RANK))
    start = torch.randn(TOKENS, HIDDEN + 6)
    expected, actual = start.clone(), start.clone()
    _original("bgmv_expand")(x, weights, expected, _indices(), add_inputs)
    vllm_cpu_lora.bgmv_expand(x, weights, actual, _indices(), add_inputs)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    wide = torch.randn(TOKENS, 3 * HIDDEN)
    expected, actual = wide.clone(), wide.clone()
    _original("bgmv_expand_slice")(x, weights, expected, _indices(), HIDDEN, HIDDEN, add_inputs)
    vllm_cpu_lora.bgmv_expand_slice(x, weights, actual, _indices(), HIDDEN, HIDDEN, add_inputs)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("rows", "indices"), [(9, [2]), (1, [0, 2, -1])])
def test_one_index_or_one_row_broadcasts_like_vllm(rows: int, indices: list[int]) -> None:
    # vLLM's logits processor scores a whole prompt's rows with one index per sequence.
    torch.manual_seed(3)
    x = torch.randn(rows, HIDDEN)
    weights = _with_empty_last_slot(torch.randn(SLOTS, 1, RANK, HIDDEN))
    n = max(rows, len(indices))
    expected, actual = torch.zeros(n, RANK), torch.zeros(n, RANK)
    _original("bgmv_shrink")(x, weights, expected, torch.tensor(indices), 1.0)
    vllm_cpu_lora.bgmv_shrink(x, weights, actual, torch.tensor(indices), 1.0)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_equal_indices_for_fewer_requests_than_rows_mean_that_slot_for_every_row() -> None:
    # vLLM's prompt-logprob step: one request's rows, the batch's per-request indices.
    torch.manual_seed(4)
    x = torch.randn(7, HIDDEN)
    weights = torch.randn(SLOTS, 1, RANK, HIDDEN)
    expected, actual = torch.zeros(7, RANK), torch.zeros(7, RANK)
    _original("bgmv_shrink")(x, weights, expected, torch.tensor([2]), 1.0)
    vllm_cpu_lora.bgmv_shrink(x, weights, actual, torch.tensor([2, 2, 2]), 1.0)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@torch.inference_mode()  # as vLLM runs them: inference tensors carry no version counter
def test_indices_refreshed_in_place_between_steps_are_not_served_from_the_cache() -> None:
    torch.manual_seed(6)
    x = torch.randn(6, HIDDEN)
    weights = _with_empty_last_slot(torch.randn(SLOTS, 1, RANK, HIDDEN))
    buffer = torch.tensor([0, 1, 2, -1, 0, 1, 9, 9])  # a punica-style buffer, sliced per step
    for step_indices in ([0, 1, 2, -1, 0, 1], [2, 2, 0, 0, -1, 1], [0, 1, 2, -1, 0, 1]):
        buffer[:6].copy_(torch.tensor(step_indices))
        expected, actual = torch.zeros(6, RANK), torch.zeros(6, RANK)
        _original("bgmv_shrink")(x, weights, expected, torch.tensor(step_indices), 1.0)
        vllm_cpu_lora.bgmv_shrink(x, weights, actual, buffer[:6], 1.0)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    # The prefill form: per-sequence slots and lengths, refreshed in place too.
    lengths, slots = torch.tensor([2, 4]), torch.tensor([1, -1])
    for step in ([1, -1], [-1, 1]):
        slots.copy_(torch.tensor(step))
        assert vllm_cpu_lora.tokens_indices(slots, lengths).tolist() == \
            torch.repeat_interleave(torch.tensor(step), lengths).tolist()


def test_mismatched_rows_and_indices_are_an_error() -> None:
    with pytest.raises(ValueError, match="indices for 3 rows, inputs have 5"):
        vllm_cpu_lora.adapter_products(torch.zeros(5, 2), torch.zeros(2, 4, 2), torch.tensor([0, 1, 0]), torch.float32)


def test_install_routes_the_cpu_wrapper_and_prefill_ops_to_the_grouped_ops() -> None:
    from vllm.lora.punica_wrapper import punica_cpu

    vllm_cpu_lora.install_cpu_lora_ops()
    assert punica_cpu.bgmv_shrink is vllm_cpu_lora.bgmv_shrink
    assert lora_ops.bgmv_expand is vllm_cpu_lora.bgmv_expand  # what sgmv_expand calls
    # The prefill (sgmv) path, through the patched globals, equals the per-token result.
    torch.manual_seed(2)
    x = torch.randn(TOKENS, RANK)
    weights = _with_empty_last_slot(torch.randn(SLOTS, 1, HIDDEN, RANK))
    seq_lens = torch.tensor([10, 20, 7])
    per_sequence = torch.tensor([0, 2, -1])
    out = torch.zeros(TOKENS, HIDDEN)
    lora_ops.sgmv_expand(x, weights, out, torch.tensor([0, 10, 30]), seq_lens, per_sequence, 3, 20, TOKENS)
    per_token = torch.repeat_interleave(per_sequence, seq_lens)
    expected = torch.einsum("bi,boi->bo", x, weights.squeeze(1)[per_token])  # -1: the empty last slot
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def _original(name: str):  # type: ignore[no-untyped-def]
    import importlib.util
    import types

    # A fresh copy of vLLM's module, so the originals are compared even after install_cpu_lora_ops().
    spec = importlib.util.find_spec("vllm.lora.ops.torch_ops.lora_ops")
    assert spec is not None and spec.origin is not None
    module = types.ModuleType("vllm_lora_ops_original")
    exec(compile(open(spec.origin).read(), spec.origin, "exec"), module.__dict__)
    return getattr(module, name)
