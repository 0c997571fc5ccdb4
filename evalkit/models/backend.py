"""The one small contract every generation backend follows, and the backend registry.

A backend turns chat prompts into completions for one *model variant*: a base model,
optionally with a LoRA adapter. Contract::

    backend.generate(variant, conversations, settings, on_progress) -> list[str]

``conversations`` are lists of chat messages; the backend applies the model's chat
template, decodes greedily when ``settings.temperature == 0``, returns one completion
per conversation in the input order, and calls ``on_progress(n)`` after each n done.
The hf and vllm backends also take ``seeds=[...]`` (one per conversation, with
temperature > 0): each conversation then samples from its own seeded generator, so its
output does not depend on the batch (see :mod:`evalkit.sampling`); and a variant with
a ``constraint`` (a JSON schema) has every output forced to that schema.
Backends load each base model once and share it between variants (adapters on a
shared base are switched, not loaded as a second copy). ``close()`` frees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalkit.config import GenerationConfig
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models.sources import ResolvedModel

Message = dict[str, str]
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class ModelVariant:
    """A base model plus an optional adapter: what one candidate runs on.

    Attributes:
        model: the resolved base model.
        adapter: a peft adapter directory, or None for the bare model.
        adapter_name: a name for the adapter unique within the run.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        options: the candidate's backend-specific ``options`` (e.g. ``base_url``).
        constraint: a JSON schema (its JSON text) every output is forced to by
            constrained decoding (``constrain: json_schema``), or None.
    """

    model: ResolvedModel
    adapter: Path | None = None
    adapter_name: str | None = None
    dtype: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    constraint: str | None = None


class Backend(Protocol):
    """Generates completions for chat conversations on a model variant."""

    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
    ) -> list[str]:
        """Return one completion per conversation, in order."""
        ...

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the exact prompt text the model sees (the chat template applied)."""
        ...

    def close(self) -> None:
        """Free the models this backend holds."""
        ...


BackendFactory = Callable[[], Backend]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory under the name suites use in ``backend:``."""

    def register(factory: BackendFactory) -> BackendFactory:
        _BACKENDS[name] = factory
        return factory

    return register


def create_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``.

    Raises:
        ConfigError: no such backend.
        BackendUnavailable: the backend's optional dependency is missing.
    """
    _import_builtin_backends()
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ConfigError(f"unknown backend '{name}'; available: {', '.join(sorted(_BACKENDS))}")
    return factory()


def _import_builtin_backends() -> None:
    # Imported lazily so that `evalkit --help` does not pay for torch.
    import importlib

    for module in ("evalkit.models.hf", "evalkit.models.vllm", "evalkit.models.openai_server"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("evalkit"):
                continue  # that backend is not part of this build
            raise BackendUnavailable(f"backend module {module} cannot import {exc.name}") from None
