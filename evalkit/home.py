"""Where evalkit keeps its caches: ``$EVALKIT_HOME``, default ``~/.cache/evalkit``."""

from __future__ import annotations

import os
from pathlib import Path


def evalkit_home() -> Path:
    """Return (and create) evalkit's cache directory."""
    home = Path(os.environ.get("EVALKIT_HOME", "~/.cache/evalkit")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
