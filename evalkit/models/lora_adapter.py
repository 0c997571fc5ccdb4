"""A LoRA adapter directory: is it a peft adapter, what rank it has, what engine rank covers it.

Plain files and the standard library only, so the HF, vLLM and server backends share it
without importing each other (or torch).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import ModelError

__all__ = ["VLLM_LORA_RANKS", "adapter_rank", "check_adapter_dir", "engine_lora_rank"]

# The ranks vLLM's LoRAConfig accepts for max_lora_rank.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def check_adapter_dir(adapter: Path) -> None:
    """Raise a ModelError naming what is missing when ``adapter`` is not a peft adapter."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"adapter {adapter}: no adapter_config.json there; is it a peft adapter directory?")


def adapter_rank(adapter: Path) -> int:
    """Return the largest LoRA rank in a peft adapter's config (``r`` and ``rank_pattern``).

    Raises:
        ModelError: the directory holds no readable adapter config.
    """
    check_adapter_dir(adapter)
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"adapter {adapter}: adapter_config.json is not valid JSON ({exc})") from None
    ranks = [int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


def engine_lora_rank(ranks: Sequence[int]) -> int:
    """Return the smallest ``max_lora_rank`` vLLM accepts that covers every rank given.

    Raises:
        ModelError: a rank exceeds vLLM's largest supported rank.
    """
    needed = max(ranks, default=16)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= needed:
            return allowed
    raise ModelError(f"LoRA rank {needed} exceeds vLLM's maximum of {VLLM_LORA_RANKS[-1]}")
