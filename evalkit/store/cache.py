"""The generation cache: completions keyed by :func:`generation_key`, in the run store's file.

Reads and writes go through the store's transactions (:class:`StoreConnection`), so the
cache shares the store's locking discipline: concurrent processes queue, never fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.files.home import json_digest, tokenizer_digest
from evalkit.record.environment import utc_now
from evalkit.store.connection import StoreConnection
from evalkit.store.rows import column_text

if TYPE_CHECKING:
    from evalkit.suite.config import GenerationConfig

_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above this


@dataclass(frozen=True)
class CachedGeneration:
    """A cached completion and the exact prompt text it answered."""

    prompt: str
    completion: str


class GenerationCache:
    """Completions stored by :func:`generation_key`, inside a run store."""

    def __init__(self, store: StoreConnection) -> None:
        self._store = store

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedGeneration]:
        """Return the cached generations among ``keys``."""
        unique = list(dict.fromkeys(keys))

        def query(conn: sqlite3.Connection) -> dict[str, CachedGeneration]:
            found: dict[str, CachedGeneration] = {}
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, prompt, completion in conn.execute(
                    f"SELECT key, prompt, completion FROM generation_cache WHERE key IN ({marks})", chunk
                ):
                    found[key] = CachedGeneration(prompt, completion)
            return found

        return self._store.read(query) if unique else {}

    def put_many(self, entries: Mapping[str, CachedGeneration]) -> None:
        """Store generations in one transaction (all of them or none)."""
        if not entries:
            return
        now = utc_now()
        rows = [(key, column_text(g.prompt), column_text(g.completion), now) for key, g in entries.items()]
        self._store.write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO generation_cache (key, prompt, completion, created_at) VALUES (?,?,?,?)",
            rows))

    def __len__(self) -> int:
        return int(self._store.read(lambda c: c.execute("SELECT COUNT(*) FROM generation_cache").fetchone()[0]))


def generation_key(
    *,
    model_fingerprint: str,
    prompt_format: str,
    adapter_hash: str | None,
    backend: str,
    runtime: Mapping[str, Any],
    options: Mapping[str, Any],
    messages: Sequence[Mapping[str, str]],
    settings: GenerationConfig,
) -> str:
    """Return the cache key of one generation: SHA-256 over everything that decides it.

    The prompt text a model sees is the chat template (``prompt_format``, see
    :func:`prompt_format_fingerprint`) applied to the exact messages, so the two
    together identify it without loading a tokenizer. ``runtime`` is what runs, not
    what the suite says (:func:`evalkit.models.runtime.runtime_identity`): the resolved
    dtype and device, or an endpoint's served model. ``batch_size`` is left out: it
    changes throughput, not what greedy decoding produces.
    """
    payload = {
        "model": model_fingerprint,
        "prompt_format": prompt_format,
        "adapter": adapter_hash,
        "backend": backend,
        "runtime": dict(runtime),
        "options": dict(options),
        "messages": [dict(m) for m in messages],
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
    }
    return json_digest(payload)


_PROMPT_FORMAT_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json",
                        "special_tokens_map.json", "tokenizer.json")


def prompt_format_fingerprint(model_dir: Path) -> str:
    """Return a SHA-256 over the files that turn messages into prompt text (tokenizer, chat template).

    Normalised as the model fingerprint is: a loader flag (``local_files_only``) is not a
    prompt format, so the same tokenizer saved online or offline keys the same generations.
    """
    return tokenizer_digest(model_dir, _PROMPT_FORMAT_FILES)
