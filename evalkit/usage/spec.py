"""What a suite says about usage: the figures a bar can name and the price table.

The suite config and the bar grammar import this module (it imports nothing of
evalkit's); :mod:`evalkit.usage.stage` measures the figures and prices them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_PRICES", "USAGE_METRICS", "PriceSpec", "find_price"]

USAGE_METRICS: dict[str, str] = {
    "latency_p50": "median seconds per item (its request's wall time)",
    "latency_p95": "95th percentile of seconds per item",
    "ttft_p50": "median seconds to the first token",
    "ttft_p95": "95th percentile of seconds to the first token",
    "tokens_per_second": "completion tokens per second of generation wall time",
    "prompt_tokens_per_item": "mean prompt tokens per item",
    "completion_tokens_per_item": "mean completion tokens per item",
    "cost": "money spent generating the measured items",
    "cost_per_1k_items": "money per 1,000 items",
}
"""Figures a bar can name, with what each means."""


class PriceSpec(BaseModel):
    """What generating costs for one candidate or model."""

    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(default=0.0, ge=0.0)
    """Money per million prompt tokens."""
    output_per_million: float = Field(default=0.0, ge=0.0)
    """Money per million completion tokens."""
    per_hour: float = Field(default=0.0, ge=0.0)
    """Money per hour of generation wall time (a machine or GPU you pay for by the hour)."""
    currency: str = "USD"
    """The currency of the figures."""


DEFAULT_PRICES: dict[str, PriceSpec] = {
    # API list prices per million tokens as published in 2025; prices change: override them.
    "claude-opus-4*": PriceSpec(input_per_million=15.0, output_per_million=75.0),
    "claude-sonnet-4*": PriceSpec(input_per_million=3.0, output_per_million=15.0),
    "claude-3-5-haiku*": PriceSpec(input_per_million=0.8, output_per_million=4.0),
    "gpt-4o-mini*": PriceSpec(input_per_million=0.15, output_per_million=0.6),
    "gpt-4o": PriceSpec(input_per_million=2.5, output_per_million=10.0),
}
"""The price table shipped with evalkit: model-source globs -> prices."""


def find_price(candidate: str, model: str, overrides: Mapping[str, PriceSpec] | None = None
               ) -> tuple[str, PriceSpec] | None:
    """Return (the table key that matched, the price) for a candidate, or None when none does.

    The suite's table wins over the default one; in each, the candidate's name wins over
    a model glob, and the longest matching glob wins among globs.
    """
    for table in (overrides or {}, DEFAULT_PRICES):
        if candidate in table:
            return candidate, table[candidate]
        globs = [key for key in table if fnmatch.fnmatchcase(model, key)]
        if globs:
            key = max(globs, key=len)
            return key, table[key]
    return None
