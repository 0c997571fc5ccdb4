"""Grouped LoRA products for vLLM's CPU backend: one matmul per adapter, not one per token.

On a CPU, vLLM applies LoRA with its PyTorch-native punica ops
(``vllm.lora.ops.torch_ops``). They gather every token's adapter matrices into a
``[tokens, rank, hidden]`` copy and contract it with an einsum: for a prefill of a few
thousand tokens that is gigabytes of copies per layer, and base + 3 adapters through one
engine took 13x the time of the base alone. The replacements here compute the same
products grouped by adapter slot (each distinct index: one ``x[rows] @ W[slot].T``), with
the same indexing (including vLLM's ``-1`` for "no adapter") and the same output
handling, so the engine's results are unchanged (``tests/models/test_vllm_cpu_lora.py``
checks them against vLLM's own ops). :func:`install` patches them in where vLLM's CPU
punica wrapper looks them up; evalkit's in-process engine calls it on CPUs only.
"""

from __future__ import annotations

from typing import Any

import torch

_INSTALLED = False


def grouped_products(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Return ``out[t] = weights[indices[t]] @ inputs[t]`` for every token ``t``.

    Args:
        inputs: ``[tokens, in]``.
        weights: stacked adapter matrices, ``[slots, out, in]`` or ``[slots, 1, out, in]``.
        indices: ``[tokens]`` slot per token (negative indices count from the end, as in
            vLLM's ops), or one slot for all tokens.
        dtype: the dtype of the products (the output tensor's).
    """
    stacked = weights.squeeze(1) if weights.dim() == 4 else weights
    x = inputs.to(dtype=dtype)
    # vLLM's einsum broadcasts a single index over every input row (its logits
    # processor passes one index per sequence with a whole prompt's rows) and a single
    # row over every index; anything else is a shape error there and here.
    if indices.numel() == 1 and x.shape[0] != 1:
        indices = indices.reshape(1).expand(x.shape[0])
    elif x.shape[0] == 1 and indices.numel() != 1:
        x = x.expand(indices.numel(), -1)
    if indices.numel() != x.shape[0]:
        raise ValueError(f"LoRA indices for {indices.numel()} rows, inputs have {x.shape[0]}")
    out = torch.empty((x.shape[0], stacked.shape[1]), dtype=dtype, device=x.device)
    for slot in torch.unique(indices).tolist():
        rows = (indices == slot).nonzero(as_tuple=True)[0]
        out[rows] = x[rows] @ stacked[slot].to(dtype=dtype).T
    return out


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    """Grouped-by-adapter replacement for vLLM's ``bgmv_shrink``."""
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    """Grouped-by-adapter replacement for vLLM's ``bgmv_expand``."""
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
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
    """Grouped-by-adapter replacement for vLLM's ``bgmv_expand_slice``."""
    outputs = grouped_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def install() -> None:
    """Use the grouped ops in vLLM's CPU LoRA path (idempotent; needs vLLM installed).

    The ``sgmv_*`` prefill ops call the ``bgmv_*`` ones through their module's globals,
    and the CPU punica wrapper imported all of them by name, so both modules are patched.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    replacements: dict[str, Any] = {
        "bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice,
    }
    for module in (lora_ops, punica_cpu):
        for name, function in replacements.items():
            if hasattr(module, name):
                setattr(module, name, function)
    _INSTALLED = True
