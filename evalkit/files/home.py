"""Where evalkit keeps its files: run history in a data directory, caches in a cache directory.

* Data (the run store, ``evalkit.db``: history that must survive clearing caches):
  ``$EVALKIT_HOME`` if set, else ``$XDG_DATA_HOME/evalkit``, else ``~/.local/share/evalkit``.
* Caches (converted models, generated benchmark tasks, judgments: all rebuilt on demand):
  ``$EVALKIT_HOME`` if set, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``.

``EVALKIT_HOME`` keeps everything in one directory, as before. Earlier versions kept the
run store in the cache directory; :func:`store_file` finds such a store and moves it to
the data directory once (or, while it looks open, uses it where it is), with a warning.

Also in this module:

* One content digest for everything evalkit identifies by value: configs, cache keys, prompts, files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "LOADER_KEYS", "file_sha256", "files_digest", "json_digest", "normalised_json", "tokenizer_digest",
]


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


# One content digest for everything evalkit identifies by value: configs, cache keys, prompts, files.
#
# A leaf module (standard library only). The JSON form is canonical (keys sorted, text
# kept as written, values JSON lacks as their ``str``), so equal content always digests
# the same, whichever module asks. The file digests are stored in manifests and cache
# keys: what they hash (names and bytes, in the order given) must never change.

_BLOCK = 1 << 20


def json_digest(payload: Any) -> str:
    """Return the SHA-256 hex digest of ``payload``'s canonical JSON form."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path | str) -> str:
    """Return the hex SHA-256 of a file's bytes, read in blocks (a dataset's identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(directory: Path, names: Iterable[str]) -> str:
    """Return a SHA-256 over each named file under ``directory`` that exists: its name, then its bytes.

    Names are hashed in the order given (as UTF-8, with no separator, as evalkit always
    has); a name with no file behind it adds nothing, so an empty set digests as ``b""``.
    """
    digest = hashlib.sha256()
    for name in names:
        path = directory / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# Keys a loader writes into a saved config or tokenizer config that say how the files were
# loaded or where from, never how the model behaves: `HF_HUB_OFFLINE=1` alone turns
# `local_files_only` true in a saved tokenizer_config.json. Left out of the fingerprint.
LOADER_KEYS = frozenset({
    "_commit_hash", "_from_model_config", "_name_or_path", "cache_dir", "force_download", "gguf_file",
    "local_files_only", "name_or_path", "revision", "subfolder", "token", "tokenizer_file",
    "transformers_version", "trust_remote_code", "use_auth_token",
})
# Settings of a tokenizer call (truncate to N, pad to N), not of the tokenizer itself.
_TOKENIZER_RUNTIME_KEYS = frozenset({"padding", "truncation"})


def normalised_json(path: Path, dropped: frozenset[str]) -> bytes:
    """A JSON file's canonical form without the keys in ``dropped`` (top level); raw bytes if not JSON."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in dropped}
    return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()


def _decoding_file_bytes(path: Path) -> bytes:
    """What of a tokenizer or generation file decides behaviour: loader flags and call settings dropped."""
    if path.suffix != ".json":
        return path.read_bytes()
    dropped = LOADER_KEYS | _TOKENIZER_RUNTIME_KEYS if path.name == "tokenizer.json" else LOADER_KEYS
    return normalised_json(path, dropped)


def tokenizer_digest(directory: Path, names: Iterable[str]) -> str:
    """Return a SHA-256 over the named tokenizer/generation files as they decide behaviour.

    Each present file adds its name and its normalised content (JSON canonical, loader
    flags such as ``local_files_only`` and paths left out), so the same tokenizer saved
    online or offline, by one transformers version or another, digests the same.
    """
    digest = hashlib.sha256()
    for name in names:
        path = directory / name
        if path.is_file():
            digest.update(f"\n{name}\n".encode())
            digest.update(_decoding_file_bytes(path))
    return digest.hexdigest()
