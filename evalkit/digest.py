"""One content digest for everything evalkit identifies by value: configs, cache keys, prompts.

A leaf module (standard library only). The JSON form is canonical (keys sorted, text
kept as written, values JSON lacks as their ``str``), so equal content always digests
the same, whichever module asks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["json_digest"]


def json_digest(payload: Any) -> str:
    """Return the SHA-256 hex digest of ``payload``'s canonical JSON form."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
