"""The grouped CPU LoRA ops give vLLM's own PyTorch-native ops' results."""

from __future__ import annotations

import pytest
import torch

# vLLM is installed by `make test`; a missing vLLM fails here rather than skipping.
from vllm.lora.ops.torch_ops import lora_ops

from evalkit.models import vllm_cpu_lora

TOKENS, HIDDEN, RANK, SLOTS = 37, 24, 8, 4


def _indices() -> torch.Tensor:
    # Mixed adapters, including vLLM's -1 ("no adapter": the last slot's zero weights).
    return torch.tensor([(t % 5) - 1 for t in range(TOKENS)])


@pytest.mark.parametrize("four_dims", [True, False])
def test_shrink_matches_vllm(four_dims: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(TOKENS, HIDDEN)
    weights = torch.randn(SLOTS, 1, RANK, HIDDEN) if four_dims else torch.randn(SLOTS, RANK, HIDDEN)
    expected, actual = torch.zeros(TOKENS, RANK), torch.zeros(TOKENS, RANK)
    # vLLM's original function, not the module attribute (install() may have replaced that)
    lora_ops_original = _original("bgmv_shrink")
    lora_ops_original(x, weights, expected, _indices(), 0.5)
    vllm_cpu_lora.bgmv_shrink(x, weights, actual, _indices(), 0.5)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_and_expand_slice_match_vllm(add_inputs: bool) -> None:
    torch.manual_seed(1)
    x = torch.randn(TOKENS, RANK)
    weights = torch.randn(SLOTS, 1, HIDDEN, RANK)
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
    weights = torch.randn(SLOTS, 1, RANK, HIDDEN)
    n = max(rows, len(indices))
    expected, actual = torch.zeros(n, RANK), torch.zeros(n, RANK)
    _original("bgmv_shrink")(x, weights, expected, torch.tensor(indices), 1.0)
    vllm_cpu_lora.bgmv_shrink(x, weights, actual, torch.tensor(indices), 1.0)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_mismatched_rows_and_indices_are_an_error() -> None:
    with pytest.raises(ValueError, match="indices for 3 rows, inputs have 5"):
        vllm_cpu_lora.grouped_products(torch.zeros(5, 2), torch.zeros(2, 4, 2), torch.tensor([0, 1, 0]), torch.float32)


def test_install_routes_the_cpu_wrapper_and_prefill_ops_to_the_grouped_ops() -> None:
    from vllm.lora.punica_wrapper import punica_cpu

    vllm_cpu_lora.install()
    assert punica_cpu.bgmv_shrink is vllm_cpu_lora.bgmv_shrink
    assert lora_ops.bgmv_expand is vllm_cpu_lora.bgmv_expand  # what sgmv_expand calls
    # The prefill (sgmv) path, through the patched globals, equals the per-token result.
    torch.manual_seed(2)
    x = torch.randn(TOKENS, RANK)
    weights = torch.randn(SLOTS, 1, HIDDEN, RANK)
    seq_lens = torch.tensor([10, 20, 7])
    per_sequence = torch.tensor([0, 2, -1])
    out = torch.zeros(TOKENS, HIDDEN)
    lora_ops.sgmv_expand(x, weights, out, torch.tensor([0, 10, 30]), seq_lens, per_sequence, 3, 20, TOKENS)
    per_token = torch.repeat_interleave(per_sequence, seq_lens)
    expected = torch.einsum("bi,boi->bo", x, weights.squeeze(1)[per_token])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def _original(name: str):  # type: ignore[no-untyped-def]
    import importlib.util
    import types

    # A fresh copy of vLLM's module, so the originals are compared even after install().
    spec = importlib.util.find_spec("vllm.lora.ops.torch_ops.lora_ops")
    assert spec is not None and spec.origin is not None
    module = types.ModuleType("vllm_lora_ops_original")
    exec(compile(open(spec.origin).read(), spec.origin, "exec"), module.__dict__)
    return getattr(module, name)
