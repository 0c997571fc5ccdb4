"""The judge provider names a suite's ``judge: {provider: ...}`` may give, as lazy registry entries.

Kept apart from :mod:`evalkit.judges.clients` (the client contract) so that the suite
config validates ``provider:`` without importing an API SDK or torch. A provider module
registers its factory with :func:`evalkit.judges.clients.register_provider`; the
built-in ones are listed here so their names are known before they are imported.
A factory takes ``(JudgeClientSpec, backends)`` and returns a judge client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalkit.registry import Registry

JUDGE_PROVIDERS: Registry[Callable[..., Any]] = Registry("judge provider", {
    "anthropic": "evalkit.judges.api_judges:_anthropic_judge",
    "local": "evalkit.judges.local_judge:_local_judge",
    "openai": "evalkit.judges.api_judges:_openai_judge",
})
"""Provider name -> client factory (typed loosely here: see the docstring)."""
