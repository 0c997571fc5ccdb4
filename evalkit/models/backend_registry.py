"""The backend registry: the names a candidate's ``backend:`` may give.

Kept apart from :mod:`evalkit.models.backend` (the protocol), which imports the suite
config: the config validates ``backend:`` against this registry. Each backend registers
itself where it is defined, with :func:`evalkit.models.backend.register_backend`; the
registry lists only the modules holding the built-in ones, imported on the first lookup
(each keeps torch and vLLM inside its functions, so that costs little).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalkit.registry import Registry

BackendFactory = Callable[[], Any]
"""Returns a new :class:`evalkit.models.backend.Backend` (typed loosely here: see the docstring)."""

BACKENDS: Registry[BackendFactory] = Registry("backend", builtin_modules=(
    "evalkit.models.hf",
    "evalkit.models.mock",
    "evalkit.models.openai_server",
    "evalkit.models.vllm",
))
"""Backend name -> factory (a class taking no arguments, or a function returning a backend)."""
