"""The judgment cache: one SQLite file, ``$EVALKIT_HOME/judgments.sqlite``.

A judgment is keyed by what determines it: the judge (provider, model, endpoint or
weights fingerprint), the rubric's content hash, the item, the reference, the
prediction, the mode and order, and the repeat number (self-consistency asks the
same question again on purpose). Only successful judgments are stored: an error is
asked again next time. Nothing secret is stored: keys never reach a judge's identity.
Kept apart from the run store on purpose: a cache can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.errors import StoreError
from evalkit.files.home import evalkit_home, json_digest
from evalkit.store.connection import store_error

CACHE_FILE = "judgments.sqlite"


def judgment_key(*parts: Any) -> str:
    """Return a SHA-256 over the JSON of ``parts`` (key order normalised)."""
    return json_digest(parts)


class JudgmentCache:
    """A small thread-safe key -> JSON store on SQLite."""

    def __init__(self, path: Path | None = None) -> None:
        """Open (and create) the cache file.

        Raises:
            StoreError: the file cannot be opened.
        """
        self.path = path or evalkit_home() / CACHE_FILE
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "created TEXT DEFAULT CURRENT_TIMESTAMP)"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"judgment cache {self.path}: {exc}; delete the file to start afresh") from None

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the stored judgment for ``key``, or None.

        Raises:
            StoreError: the file is damaged or unreadable (see :func:`evalkit.store.connection.store_error`).
        """
        with self._lock, self._file_errors():
            row = self._db.execute("SELECT value FROM judgments WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store a judgment under ``key`` (replacing any).

        Raises:
            StoreError: the file is damaged, unreadable or read-only.
        """
        with self._lock, self._file_errors():
            self._db.execute("INSERT OR REPLACE INTO judgments (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, ensure_ascii=False)))
            self._db.commit()

    @contextlib.contextmanager
    def _file_errors(self) -> Iterator[None]:
        """Turn an SQLite error about the file itself into the StoreError saying how to recover."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = store_error(self.path, exc, "judgment cache")
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

    def __enter__(self) -> JudgmentCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
