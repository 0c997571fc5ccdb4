"""evalkit's caches: completions in the run store's file, and typed values in files of their own.

The generation cache (:class:`GenerationCache`, keyed by :func:`generation_key`) reads and
writes through the store's transactions (:class:`StoreConnection`), so it shares the
store's locking discipline: concurrent processes queue, never fail. The judgments,
benchmark outcomes and contamination overlaps each live in a :class:`JsonCache`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from evalkit.errors import StoreError
from evalkit.files.home import json_digest, tokenizer_digest
from evalkit.record.run_facts import utc_now
from evalkit.store.connection import StoreConnection, column_text, store_error

if TYPE_CHECKING:
    from evalkit.suite.config import GenerationConfig

_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above this
Value = TypeVar("Value")


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
    what the suite says (:func:`evalkit.models.backend.runtime_identity`): the resolved
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


class JsonCache(Generic[Value]):
    """Values of one type by key, in an SQLite file of their own; use as a context manager.

    The judgments, benchmark outcomes and contamination overlaps are each kept this way
    (``judgments.sqlite``, ``benchmarks.sqlite``, ``contamination.sqlite``), apart from the
    run store on purpose: a cache can be deleted at any time. A value is written as its
    type's JSON and read back through pydantic; one that no longer has the type's shape
    (another evalkit version wrote it) is a miss, computed again, never an error.
    Thread-safe: a judge's worker threads share one.

    Args:
        shape: the values' type (``BenchmarkOutcome``, ``dict[str, Any]`` ...).
        path: the SQLite file.
        what: the cache's name in error messages (``judgment cache``).

    Raises:
        StoreError: the file cannot be opened.
    """

    def __init__(self, shape: Any, path: Path, what: str) -> None:
        self.path = path
        self._what = what
        self._adapter: TypeAdapter[Value] = TypeAdapter(shape)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # "judgments" for every such file: the judgment cache came first, and files made since keep working.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "created TEXT DEFAULT CURRENT_TIMESTAMP)"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"{what} {self.path}: {exc}; delete the file to start afresh") from None

    def get(self, key: str) -> Value | None:
        """Return the value stored under ``key``, or None (absent, or no longer of the type's shape).

        Raises:
            StoreError: the file is damaged or unreadable (see :func:`evalkit.store.connection.store_error`).
        """
        with self._lock, self._file_errors():
            row = self._db.execute("SELECT value FROM judgments WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return self._adapter.validate_json(row[0])
        except ValidationError:
            return None

    def put(self, key: str, value: Value) -> None:
        """Store ``value`` under ``key`` (replacing any).

        Raises:
            StoreError: the file is damaged, unreadable or read-only.
        """
        text = self._adapter.dump_json(value).decode("utf-8")
        with self._lock, self._file_errors():
            self._db.execute("INSERT OR REPLACE INTO judgments (key, value) VALUES (?, ?)", (key, text))
            self._db.commit()

    @contextlib.contextmanager
    def _file_errors(self) -> Iterator[None]:
        """Turn an SQLite error about the file itself into the StoreError saying how to recover."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = store_error(self.path, exc, self._what)
            if error is None:
                raise
            raise error from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> JsonCache[Value]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
