"""The installed evalkit version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def evalkit_version() -> str:
    """Return evalkit's version, or ``0+unknown`` when run from an uninstalled tree."""
    try:
        return version("evalkit")
    except PackageNotFoundError:
        return "0+unknown"
