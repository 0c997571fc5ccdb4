"""The store's connection and its transaction discipline.

The file is in WAL mode, so readers never block writers. Every write is one
``BEGIN IMMEDIATE`` transaction, which takes the write lock up front (a deferred
transaction that upgrades from read to write can fail at once, whatever the busy
timeout); waiting for the lock uses SQLite's busy timeout, and a transaction that still
meets "database is locked" is retried with backoff, so concurrent processes queue
instead of failing. Opening a connection upgrades the schema (:mod:`evalkit.store.schema`).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

from evalkit.errors import StoreError
from evalkit.store.schema import SCHEMA_VERSION, upgrade_schema, user_version

T = TypeVar("T")

# How long one process waits on a lock inside SQLite, and how long it keeps retrying
# whole transactions after that (both far above any write evalkit makes).
BUSY_TIMEOUT_MS = 30_000
RETRY_SECONDS = 300.0


class StoreConnection:
    """An open store file with its schema current; read and write through transactions.

    Args:
        path: the SQLite file; created, with its directory, when missing.

    Raises:
        StoreError: the file is not an SQLite database, or was made by a newer evalkit.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                                         isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the run store ({exc}); "
                             "check the path and its permissions, or pass --store") from None
        try:
            self._retry(lambda: self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            # WAL with synchronous=NORMAL never loses a committed transaction to a killed
            # process (only to a power cut), and commits are much cheaper than FULL.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if user_version(self._conn) != SCHEMA_VERSION:
                self.write(lambda conn: upgrade_schema(conn, self.path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path}: not a usable evalkit run store ({exc}); "
                             "move the file away or pass --store with another path") from None
        except StoreError:
            self._conn.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return user_version(self._conn)

    def _retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while SQLite reports the database locked or busy."""
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                message = str(exc).lower()
                if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                    if "locked" in message or "busy" in message:
                        raise StoreError(f"{self.path}: still locked by another process after "
                                         f"{RETRY_SECONDS:.0f} s; is a process stuck?") from None
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction, retried as a whole when locked."""

        def attempt() -> T:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return result

        return self._retry(attempt)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one read transaction (a consistent snapshot)."""

        def attempt() -> T:
            self._conn.execute("BEGIN")
            try:
                return work(self._conn)
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

        return self._retry(attempt)
