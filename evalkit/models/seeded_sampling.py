"""Sampling that does not depend on the batch: one seeded generator per sequence.

transformers' sampling draws every row of a batch from one global generator, so a
sequence's output changes with the rows beside it. Here each sequence has its own
``torch.Generator`` (seeded per item and sample, :func:`evalkit.checks.sampling.sample_seed`)
and samples by the Gumbel-max trick: ``argmax(logits / t + g)`` with ``g`` standard
Gumbel noise is an exact draw from ``softmax(logits / t)``. Added as a logits
processor in front of greedy decoding, it keeps masks from processors before it
(a token at -inf stays impossible), and a sequence's draws depend only on its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

# Keeps log(-log(u)) finite at the ends of (0, 1).
_TINY = 1e-20


class SeededSampler(LogitsProcessor):
    """Turns greedy decoding into temperature sampling with one generator per row."""

    def __init__(self, seeds: Sequence[int], temperature: float) -> None:
        """One generator per batch row, seeded from ``seeds``; ``temperature`` > 0."""
        if temperature <= 0:
            raise ValueError("SeededSampler needs temperature > 0")
        self.temperature = temperature
        self.generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return ``scores / t`` plus per-row Gumbel noise (the argmax is then a sample)."""
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"SeededSampler has {len(self.generators)} seeds for {scores.shape[0]} rows")
        vocab = scores.shape[-1]
        uniform = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(_TINY, 1.0 - 1e-16)))
        scaled = scores.double() / self.temperature + gumbel.to(scores.device)
        return scaled.to(scores.dtype)  # type: ignore[return-value]
