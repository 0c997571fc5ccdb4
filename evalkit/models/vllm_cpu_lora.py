"""Grouped LoRA products for vLLM's CPU backend: no per-token copies of adapter matrices.

On a CPU, vLLM applies LoRA with its PyTorch-native punica ops
(``vllm.lora.ops.torch_ops``). They gather every token's adapter matrices into a
``[tokens, rank, hidden]`` copy and contract it with an einsum: for a prefill of a few
thousand tokens that is gigabytes of copies per layer, and base + 3 adapters through one
engine took 13x the time of the base alone. The replacements here compute the same
products without that copy, in one of two ways chosen by size (:func:`adapter_products`):
a few rows (decoding) multiply by every slot's matrix at once and keep each row's slot, a
handful of tensor ops whatever the mix of adapters; many rows (prefill) multiply each
slot's rows by its matrix, one matmul per distinct slot. Both keep vLLM's indexing and
output handling (``tests/models/test_vllm_cpu_lora.py`` checks them against vLLM's own
ops), with one fix: ``-1`` ("no adapter", a base-model request) gives a zero product.
vLLM's torch ops index the stacked weights with it, which selects the last slot:
harmless while that slot is empty, but with all ``max_loras`` slots holding adapters,
the base model's rows in a mixed batch got the last slot's adapter.
:func:`install` patches them in where vLLM's CPU punica wrapper looks them up; evalkit's
in-process engine calls it on CPUs only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

_INSTALLED = False
_T = TypeVar("_T")


class _PerStepCache:
    """Results derived from small index tensors, reused while the indices are the same.

    Every LoRA layer of a forward pass gets the same indices (slices of the punica
    wrapper's buffers, refreshed each step), so what is derived from them is computed
    once per step instead of once per layer. Entries are matched by content (a copy of
    the indices is kept): vLLM runs under inference mode, whose tensors have no version
    counter to tell a refreshed buffer from an unchanged one.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.entries: list[tuple[str, tuple[torch.Tensor, ...], Any]] = []

    def get(self, kind: str, tensors: tuple[torch.Tensor, ...], compute: Callable[[], _T]) -> _T:
        """Return the ``kind`` result cached for tensors equal to ``tensors``, else ``compute()``'s."""
        for position, (entry_kind, saved, value) in enumerate(self.entries):
            if entry_kind == kind and all(a.shape == b.shape and torch.equal(a, b)
                                          for a, b in zip(saved, tensors, strict=True)):
                if position:
                    self.entries.insert(0, self.entries.pop(position))
                return value  # type: ignore[no-any-return]
        value = compute()
        self.entries.insert(0, (kind, tuple(t.clone() for t in tensors), value))
        del self.entries[self.size :]
        return value


_CACHE = _PerStepCache()


@dataclass(frozen=True)
class RowSlots:
    """Which adapter slot each row uses, in the forms the products need."""

    indices: torch.Tensor  # [rows], -1 for no adapter
    rows: torch.Tensor  # 0..rows-1
    slots: torch.Tensor  # [rows], -1 replaced by 0 (masked afterwards)
    no_adapter: torch.Tensor | None  # [rows, 1] True where -1; None when there is none
    distinct: tuple[int, ...]  # the adapter slots present (not -1)


def row_slots(indices: torch.Tensor) -> RowSlots:
    """Return (cached per step) the slot selection for per-row ``indices``."""

    def compute() -> RowSlots:
        negative = indices < 0
        distinct = tuple(int(v) for v in torch.unique(indices).tolist() if v >= 0)
        # Its own copy of the indices: the buffer they came from is refreshed in place.
        return RowSlots(indices.clone(), torch.arange(indices.numel(), device=indices.device), indices.clamp_min(0),
                        negative.unsqueeze(1) if bool(negative.any()) else None, distinct)

    return _CACHE.get("rows", (indices,), compute)


# Above this many output elements (rows x slots x width) the all-slots product's wasted
# work outweighs the per-slot loop's fixed cost (measured on a 2-core CPU: decode batches
# of 8-128 rows run 2-4x faster all-slots, prefills of thousands of rows per-slot).
ALL_SLOTS_LIMIT = 1 << 19


def adapter_products(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Return ``out[t] = weights[indices[t]] @ inputs[t]`` for every row ``t``.

    Args:
        inputs: ``[rows, in]``.
        weights: stacked adapter matrices, ``[slots, out, in]`` or ``[slots, 1, out, in]``.
        indices: ``[rows]`` slot per row, ``-1`` for "no adapter" (a zero product), or
            one slot for all rows; any number of equal slots also means that slot for
            all rows.
        dtype: the dtype of the products (the output tensor's).
    """
    stacked = weights.squeeze(1) if weights.dim() == 4 else weights
    x = inputs.to(dtype=dtype)
    # vLLM's einsum broadcasts a single row over every index, and a single index over
    # every row (its logits processor passes one index per sequence with a whole
    # prompt's rows). Beyond vLLM: several equal indices for another number of rows mean
    # that slot too. vLLM computes prompt logprobs one request at a time but passes the
    # whole batch's per-request indices (its own ops fail there); when every request
    # uses the same adapter, each row's slot is still known. Anything else is an error.
    if x.shape[0] == 1 and indices.numel() != 1:
        x = x.expand(indices.numel(), -1)
    elif indices.numel() != x.shape[0] and indices.numel() > 0 and bool((indices == indices.reshape(-1)[0]).all()):
        indices = indices.reshape(-1)[:1].expand(x.shape[0])
    if indices.numel() != x.shape[0]:
        raise ValueError(f"LoRA indices for {indices.numel()} rows, inputs have {x.shape[0]}")
    stacked = stacked.to(dtype=dtype)
    selection = row_slots(indices)
    if x.shape[0] * stacked.shape[0] * stacked.shape[1] <= ALL_SLOTS_LIMIT:
        return all_slot_products(x, stacked, selection)
    return per_slot_products(x, stacked, selection)


def all_slot_products(x: torch.Tensor, stacked: torch.Tensor, selection: RowSlots) -> torch.Tensor:
    """Multiply every row by every slot's matrix in one matmul, then keep each row's slot."""
    slots, width, _ = stacked.shape
    every_slot = (x @ stacked.reshape(slots * width, -1).T).view(x.shape[0], slots, width)
    kept = every_slot[selection.rows, selection.slots]
    if selection.no_adapter is not None:
        kept.masked_fill_(selection.no_adapter, 0.0)
    return kept


def per_slot_products(x: torch.Tensor, stacked: torch.Tensor, selection: RowSlots) -> torch.Tensor:
    """Multiply each distinct slot's rows by that slot's matrix, one matmul per slot."""
    out = torch.zeros((x.shape[0], stacked.shape[1]), dtype=x.dtype, device=x.device)
    for slot in selection.distinct:  # rows without an adapter stay zero
        rows = (selection.indices == slot).nonzero(as_tuple=True)[0]
        out[rows] = x[rows] @ stacked[slot].T
    return out


def tokens_indices(lora_indices_tensor: torch.Tensor, seq_len_tensor: torch.Tensor) -> torch.Tensor:
    """Return (cached per step) each token's slot from each sequence's slot and length."""
    return _CACHE.get("tokens", (lora_indices_tensor, seq_len_tensor),
                      lambda: torch.repeat_interleave(lora_indices_tensor, seq_len_tensor))


def sgmv_shrink(inputs: torch.Tensor, lora_a_weights: torch.Tensor, output_tensor: torch.Tensor,
                b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor,
                batches: int, max_seq_length: int, token_nums: int, scaling: float) -> None:
    """Replacement for vLLM's ``sgmv_shrink`` (slots per sequence): token slots cached per step."""
    bgmv_shrink(inputs, lora_a_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor), scaling)


def sgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor,
                batches: int, max_seq_length: int, token_nums: int, add_inputs: bool = False) -> None:
    """Replacement for vLLM's ``sgmv_expand``: token slots cached per step."""
    bgmv_expand(inputs, lora_b_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor),
                add_inputs)


def sgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, batches: int, max_seq_length: int, token_nums: int,
                      slice_offset: int, slice_size: int, add_inputs: bool = False) -> None:
    """Replacement for vLLM's ``sgmv_expand_slice``: token slots cached per step."""
    bgmv_expand_slice(inputs, lora_b_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor),
                      slice_offset, slice_size, add_inputs)


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    """Copy-free replacement for vLLM's ``bgmv_shrink``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    """Copy-free replacement for vLLM's ``bgmv_expand``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    # The adapter and the model may pad their outputs to different widths.
    common = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, slice_offset: int, slice_size: int,
                      add_inputs: bool = True) -> None:
    """Copy-free replacement for vLLM's ``bgmv_expand_slice``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def install() -> None:
    """Use the copy-free ops in vLLM's CPU LoRA path (idempotent; needs vLLM installed).

    The CPU punica wrapper imported vLLM's ops by name and vLLM's ``sgmv_*`` ops call
    its ``bgmv_*`` ones through their module's globals, so both modules are patched.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    replacements: dict[str, Any] = {
        "bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice,
        "sgmv_shrink": sgmv_shrink, "sgmv_expand": sgmv_expand, "sgmv_expand_slice": sgmv_expand_slice,
    }
    for module in (lora_ops, punica_cpu):
        for name, function in replacements.items():
            if hasattr(module, name):
                setattr(module, name, function)
    _INSTALLED = True
