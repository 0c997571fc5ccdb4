"""What a candidate actually runs on, for the generation cache key.

A suite says ``dtype: auto``; what runs is float32 on a CPU and bfloat16 on a GPU, and
the two give different completions. The cache key therefore holds the *resolved*
dtype and the device kind (:func:`runtime_identity`), never the words of the suite.
For a model behind an external endpoint nothing local decides the output: its key
holds what the server says it serves (:func:`evalkit.models.openai_server.served_identity`).
Each backend names its rule where it registers (``@register_backend("hf",
identity=local_identity)``), so this module imports no backend and every backend may
import it.

Only torch is imported here (and only for local backends), so that a run answered
wholly from the cache loads no model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from evalkit.models.backend import ModelVariant, identity_rule

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
