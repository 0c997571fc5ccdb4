"""The backend names a candidate's ``backend:`` may give, as one registry of lazy entries.

Kept apart from :mod:`evalkit.models.backend` (the protocol), which imports the suite
config: the config validates ``backend:`` against these names, and listing them imports
no backend module (no torch, no vLLM). A backend module registers its factory with
:func:`evalkit.models.backend.register_backend`; a built-in one is also listed here so
its name is known before it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalkit.registry import Registry

BackendFactory = Callable[[], Any]
"""Returns a new :class:`evalkit.models.backend.Backend` (typed loosely here: see the docstring)."""

BACKENDS: Registry[BackendFactory] = Registry("backend", {
    "hf": "evalkit.models.hf:HFBackend",
    "mock": "evalkit.models.mock:MockBackend",
    "openai_server": "evalkit.models.openai_server:OpenAIServerBackend",
    "vllm": "evalkit.models.vllm:VLLMBackend",
})
"""Backend name -> factory (a class taking no arguments, or a function returning a backend)."""
