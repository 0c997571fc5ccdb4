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

__all__ = ["file_sha256", "files_digest", "json_digest"]

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
