"""The one small contract every generation backend follows, and the backend registry.

A backend turns chat prompts into completions for one *model variant*: a base model,
optionally with a LoRA adapter. Contract::

    backend.generate(variant, conversations, settings, on_progress) -> list[str]

``conversations`` are lists of chat messages; the backend applies the model's chat
template, decodes greedily when ``settings.temperature == 0``, returns one completion
per conversation in the input order, and calls ``on_progress(n)`` after each n done.
The hf and vllm backends also take ``seeds=[...]`` (one per conversation, with
temperature > 0): each conversation then samples from its own seeded generator, so its
output does not depend on the batch (see :mod:`evalkit.checks.sampling`); and a variant with
a ``constraint`` (a JSON schema) has every output forced to that schema. A backend
whose class sets ``takes_items = True`` (the mock) also gets ``items=[GenerationItem]``,
each conversation's item id and expected output.
Backends load each base model once and share it between variants (adapters on a
shared base are switched, not loaded as a second copy). ``close()`` frees them.

Backends are looked up by name in :data:`evalkit.registry.BACKENDS`;
each registers itself with ``@register_backend("name")`` on its class, so a new one is
one module in ``models/`` (named in the registry's ``builtin_modules``) or in a plugin
(docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models.sources import ResolvedModel
from evalkit.registry import BACKENDS, UnknownName
from evalkit.suite.config import GenerationConfig

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
        base_dir: the suite file's directory: relative paths in ``options`` are read from it.
    """

    model: ResolvedModel
    adapter: Path | None = None
    adapter_name: str | None = None
    dtype: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    constraint: str | None = None
    base_dir: Path | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class GenerationItem:
    """What a backend with ``takes_items = True`` (the mock) gets per conversation besides it.

    Attributes:
        item_id: the item's id in the dataset.
        reference: the item's expected output.
    """

    item_id: str
    reference: str


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

IdentityRule = Callable[[ModelVariant], dict[str, Any]]
"""Returns what decides a candidate's completions besides its model files and prompt."""

_IDENTITY_RULES: dict[str, IdentityRule] = {}
"""Backend name -> its identity rule, filled by :func:`register_backend` beside the registry."""


def register_backend(name: str, *, identity: IdentityRule | None = None
                     ) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory under the name suites use in ``backend:`` (a decorator).

    The factory (a class or a function) takes no arguments and returns a :class:`Backend`.

    Args:
        name: the name suites use.
        identity: what decides its completions besides the model files and the prompt
            (part of the generation cache key; :func:`evalkit.models.backend.runtime_identity`):
            the local device and dtype for in-process backends, the mock's script, a
            server's served model. Without one, the suite's ``dtype`` is all that is known.

    Raises:
        DuplicateName: another factory holds ``name``.
    """

    def register(factory: BackendFactory) -> BackendFactory:
        BACKENDS.register(name, factory)
        if identity is not None:
            _IDENTITY_RULES[name] = identity
        return factory

    return register


def identity_rule(name: str) -> IdentityRule | None:
    """Return the identity rule the backend registered under ``name`` gave, or None.

    Raises:
        UnknownName: no backend has that name.
    """
    BACKENDS.get(name)  # imports the module that registers it, and its rule
    return _IDENTITY_RULES.get(name)


def backend_names() -> list[str]:
    """Return every registered backend name (built-in and plugins'), sorted."""
    return BACKENDS.names()


def create_backend(name: str) -> Backend:
    """Instantiate the backend registered under ``name``.

    Raises:
        ConfigError: no such backend.
        BackendUnavailable: the backend's optional dependency is missing.
    """
    try:
        factory = BACKENDS.get(name)
    except UnknownName as exc:
        raise ConfigError(str(exc)) from None
    try:
        backend: Backend = factory()  # a backend imports its heavy libraries here, not with its module
    except ModuleNotFoundError as exc:
        raise BackendUnavailable(f"backend '{name}' cannot import {exc.name}; install it to use this backend") from None
    return backend


# What a candidate actually runs on, for the generation cache key.
#
# A suite says ``dtype: auto``; what runs is float32 on a CPU and bfloat16 on a GPU, and
# the two give different completions. The cache key therefore holds the *resolved*
# dtype and the device kind (:func:`runtime_identity`), never the words of the suite.
# For a model behind an external endpoint nothing local decides the output: its key
# holds what the server says it serves (:func:`evalkit.models.openai_server.served_identity`).
# Each backend names its rule where it registers (``@register_backend("hf",
# identity=local_identity)``), so this module imports no backend and every backend may
# import it.
#
# Only torch is imported here (and only for local backends), so that a run answered
# wholly from the cache loads no model.

DTYPES = ("float32", "bfloat16", "float16")


@lru_cache(maxsize=1)
def device_kind() -> str:
    """Return ``cuda`` when a GPU is present, else ``cpu`` (what the hf and vllm backends pick)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(requested: str, device: str) -> str:
    """Resolve ``auto`` to bfloat16 on a GPU and float32 on a CPU; other names stay as they are."""
    if requested == "auto":
        return "bfloat16" if device == "cuda" else "float32"
    return requested


def local_identity(variant: ModelVariant) -> dict[str, Any]:
    """The identity rule of in-process backends (hf, vllm): the device kind and the dtype resolved on it."""
    device = device_kind()
    return {"device": device, "dtype": resolve_dtype(variant.dtype, device)}


def runs_locally(backend: str) -> bool:
    """True for a backend that runs the model in this process (its identity rule is :func:`local_identity`)."""
    return identity_rule(backend) is local_identity


def runtime_identity(backend: str, variant: ModelVariant) -> dict[str, Any]:
    """Return what decides a generation besides the model files and the prompt.

    Args:
        backend: the candidate's backend name.
        variant: the planned model variant.

    Returns:
        ``{"device", "dtype"}`` resolved for local backends (and for a vLLM server
        evalkit starts itself); for an external ``openai_server`` endpoint, the served
        model's identity under ``"served"``.

    Raises:
        ModelError: an external endpoint does not answer or does not serve the model.
    """
    rule = identity_rule(backend)
    if rule is not None:
        return rule(variant)
    # A backend that registered no rule (a plugin's): only what the suite says is known.
    return {"device": "unknown", "dtype": variant.dtype}
