"""One content digest for everything evalkit identifies by value: configs, cache keys, prompts, files.

A leaf module (standard library only). The JSON form is canonical (keys sorted, text
kept as written, values JSON lacks as their ``str``), so equal content always digests
the same, whichever module asks. The file digests are stored in manifests and cache
keys: what they hash (names and bytes, in the order given) must never change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["LOADER_KEYS", "file_sha256", "files_digest", "json_digest", "normalised_json", "tokenizer_digest"]

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
