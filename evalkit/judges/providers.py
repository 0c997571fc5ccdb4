"""The judge provider registry: the names a suite's ``judge: {provider: ...}`` may give.

Kept apart from :mod:`evalkit.judges.clients` (the client contract) so that the suite
config validates ``provider:`` without importing an API SDK or torch. Each provider
registers its factory where it is defined, with
:func:`evalkit.judges.clients.register_provider`; the registry lists only the modules
holding the built-in ones, imported on the first lookup (they import their SDK and torch
inside functions). A factory takes ``(JudgeClientSpec, backends)`` and returns a judge client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalkit.registry import Registry

JUDGE_PROVIDERS: Registry[Callable[..., Any]] = Registry("judge provider", builtin_modules=(
    "evalkit.judges.api_judges",
    "evalkit.judges.local_judge",
))
"""Provider name -> client factory (typed loosely here: see the docstring)."""
