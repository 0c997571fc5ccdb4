"""Where evalkit keeps its files: run history in a data directory, caches in a cache directory.

* Data (the run store, ``evalkit.db``: history that must survive clearing caches):
  ``$EVALKIT_HOME`` if set, else ``$XDG_DATA_HOME/evalkit``, else ``~/.local/share/evalkit``.
* Caches (converted models, generated benchmark tasks, judgments: all rebuilt on demand):
  ``$EVALKIT_HOME`` if set, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``.

``EVALKIT_HOME`` keeps everything in one directory, as before. Earlier versions kept the
run store in the cache directory; :func:`store_file` finds such a store and moves it to
the data directory once (or, while it looks open, uses it where it is), with a warning.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

HOME_ENV = "EVALKIT_HOME"
APP_DIR = "evalkit"
DATA_DIR_HELP = "$EVALKIT_HOME, else $XDG_DATA_HOME/evalkit, else ~/.local/share/evalkit"
"""Where the data directory is, in words for help texts."""
STORE_DEFAULT_HELP = f"$EVALKIT_STORE, else evalkit.db in evalkit's data directory ({DATA_DIR_HELP})"
"""The run store's default location, in words for help texts."""
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class StoreLocationWarning(UserWarning):
    """The run store was found in the old cache location (moved or used in place)."""


def _xdg_dir(variable: str, fallback: str) -> Path:
    # The XDG spec: a relative value is invalid and must be ignored.
    value = os.environ.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path(fallback).expanduser()
    return base / APP_DIR


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_home() -> Path:
    """Return (and create) the directory for run history: ``$EVALKIT_HOME`` or ``$XDG_DATA_HOME/evalkit``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return _made(Path(override).expanduser())
    return _made(_xdg_dir("XDG_DATA_HOME", "~/.local/share"))


def cache_home() -> Path:
    """Return (and create) the directory for caches: ``$EVALKIT_HOME`` or ``$XDG_CACHE_HOME/evalkit``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return _made(Path(override).expanduser())
    return _made(_xdg_dir("XDG_CACHE_HOME", "~/.cache"))


def evalkit_home() -> Path:
    """Return (and create) evalkit's cache directory (the same as :func:`cache_home`)."""
    return cache_home()


def store_file(filename: str) -> Path:
    """Return the run store's path in the data directory, moving one left in the cache directory.

    When ``EVALKIT_HOME`` is unset, the data directory has no ``filename`` and the cache
    directory has one (where earlier versions kept it), the file and its SQLite sidecars
    are moved across and a :class:`StoreLocationWarning` says so. A store whose write-ahead
    log is present may be open in another process: it is used in place, with a warning.
    """
    target = data_home() / filename
    if os.environ.get(HOME_ENV) or target.exists():
        return target
    legacy = _xdg_dir("XDG_CACHE_HOME", "~/.cache") / filename
    if not legacy.is_file():
        return target
    sidecars = [legacy.with_name(legacy.name + suffix) for suffix in _SQLITE_SIDECARS]
    if any(path.exists() for path in sidecars):
        warnings.warn(
            f"using the run store at {legacy} (the old cache location) in place: it looks open "
            f"elsewhere; when no evalkit runs, it will be moved to {target}",
            StoreLocationWarning, stacklevel=2,
        )
        return legacy
    shutil.move(str(legacy), str(target))
    warnings.warn(
        f"moved the run store from {legacy} (a cache directory, which tools clear) to {target}",
        StoreLocationWarning, stacklevel=2,
    )
    return target
