"""Where the store's file is, its connection and transaction discipline, its schema, and a run's rows.

The file is in WAL mode, so readers never block writers. Every write is one
``BEGIN IMMEDIATE`` transaction, which takes the write lock up front (a deferred
transaction that upgrades from read to write can fail at once, whatever the busy
timeout); waiting for the lock uses SQLite's busy timeout, and a transaction that still
meets "database is locked" is retried with backoff, so concurrent processes queue
instead of failing. Opening a connection upgrades the schema (below).

While it waits for another process's lock, a line says so every ``LOCK_NOTICE_SECONDS``
(on stderr, or to the ``on_wait`` callback): SQLite's own busy wait is kept shorter than
that interval so the waiting comes back here to be reported.

Commands that only read (``history``, ``compare``, ``report``, ``export``) open the file
read-only (``read_only=True``: an SQLite ``mode=ro`` URI), so a store on a read-only mount
or without write permission can be read; only writers need write access. A WAL file on
a read-only mount has no ``-shm`` index and cannot get one: it is then opened
``immutable`` (nothing can write it there anyway).

Every SQLite error that says the file itself is unusable (damaged pages, not a database,
an I/O error, a full disk, no permission, read-only) becomes one :class:`StoreError`
naming the file and what to do (:func:`store_error`), an input error with exit code 2,
wherever it surfaces: opening, the generation cache, a run's rows.

Also here:

* Row mapping: a :class:`~evalkit.record.results.RunResult` into the store's tables and back
  (:func:`insert_candidates`, :func:`read_run`, :func:`read_summary`).
* The store's SQLite schema and its migrations (:func:`upgrade_schema`).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

from evalkit.checks import Score
from evalkit.comparison.result import Comparison
from evalkit.errors import StoreError
from evalkit.files.home import has_surrogates, json_text, store_file, without_surrogates
from evalkit.record.results import (
    CandidateIdentity,
    CandidateResult,
    ItemResult,
    RunResult,
    SummaryRecord,
    parse_record,
    summary_json,
)

# Row mapping: a :class:`~evalkit.record.results.RunResult` into the store's tables and back.
#
# Every function takes an open connection inside a transaction the caller holds (see
# :class:`evalkit.store.connection.StoreConnection`); none commits.

# One encoder for every row: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def column_json(value: Any) -> str:
    """JSON for a column: lone surrogates (which SQLite's UTF-8 cannot hold) as escapes, losslessly."""
    text = _ENCODER.encode(value)
    return json_text(value) if has_surrogates(text) else text


def column_text(value: str) -> str:
    """Model text for a TEXT column: NUL is kept; a lone surrogate becomes U+FFFD."""
    return without_surrogates(value)


def rename_run(run: RunResult, run_id: str) -> None:
    """Give ``run`` another id, and its comparison section's references to the old one with it."""
    old = run.run_id
    run.run_id = run_id
    comparison: Comparison | None = run.section("comparison")
    if comparison is not None:
        if comparison.baseline_run_id == old:
            comparison.baseline_run_id = run_id
        if comparison.candidate_run_id == old:
            comparison.candidate_run_id = run_id
        run.set_section("comparison", comparison)


def insert_candidates(conn: sqlite3.Connection, run: RunResult) -> None:
    """Insert the run's candidates, their item results and their per-item values."""
    for position, candidate in enumerate(run.candidates):
        identity = candidate.identity
        conn.execute(
            "INSERT INTO candidates (run_id, name, position, status, message, identity_json,"
            " model_fingerprint, adapter_hash, seconds) VALUES (?,?,?,?,?,?,?,?,?)",
            (run.run_id, candidate.name, position, candidate.status, column_text(candidate.message),
             column_json(asdict(identity)) if identity else None,
             identity.model_fingerprint if identity else None, identity.adapter_hash if identity else None,
             candidate.seconds),
        )
        # Rows are generated as SQLite takes them: a million items never sit in memory twice.
        conn.executemany(
            "INSERT INTO item_results (run_id, candidate, position, item_id, fields_json, prompt, expected,"
            " prediction, scores_json) VALUES (?,?,?,?,?,?,?,?,?)",
            ((run.run_id, candidate.name, index, column_text(item.item_id), column_json(item.fields),
              column_text(item.prompt), column_text(item.expected), column_text(item.prediction),
              column_json({n: [s.value, s.reason] for n, s in item.scores.items()}))
             for index, item in enumerate(candidate.items)),
        )
        conn.executemany(
            "INSERT INTO item_values (run_id, candidate, metric, item_id, value) VALUES (?,?,?,?,?)",
            ((run.run_id, candidate.name, metric, column_text(item_id), float(value))
             for metric, values in candidate.item_values.items() for item_id, value in values.items()),
        )


def insert_metrics(conn: sqlite3.Connection, run: RunResult) -> None:
    """Insert (or replace) each candidate's mean per metric, for history and summaries."""
    # Imported here, not at the top, so opening a store (`evalkit history`) loads no numpy;
    # evalkit.comparison.compare does not import the store, so there is no cycle behind this.
    from evalkit.comparison.compare import metric_arrays

    for candidate in run.candidates:
        conn.executemany(
            "INSERT OR REPLACE INTO run_metrics (run_id, candidate, metric, value, n) VALUES (?,?,?,?,?)",
            [(run.run_id, candidate.name, metric, float(array.values.mean()), int(array.values.size))
             for metric, array in metric_arrays(candidate).items() if array.values.size])


def read_summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """Return a stored run's summary (as :meth:`RunResult.summary` makes it) without loading items."""
    row = conn.execute(
        "SELECT suite, suite_path, baseline, started_at, finished_at, dataset_hash, evalkit_version, command,"
        " sections_json, warnings_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    counts = dict(conn.execute(
        "SELECT candidate, COUNT(*) FROM item_results WHERE run_id = ? GROUP BY candidate", (run_id,)).fetchall())
    metrics: dict[str, dict[str, float]] = {}
    for candidate, metric, value in conn.execute(
        "SELECT candidate, metric, value FROM run_metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
    ):
        metrics.setdefault(candidate, {})[metric] = value
    candidates = [
        {"name": name, "status": status, "message": message,
         "identity": json.loads(identity) if identity else None, "items": counts.get(name, 0),
         "seconds": round(seconds, 3), "metrics": metrics.get(name, {})}
        for name, status, message, identity, seconds in conn.execute(
            "SELECT name, status, message, identity_json, seconds FROM candidates WHERE run_id = ?"
            " ORDER BY position", (run_id,))
    ]
    record = parse_record(SummaryRecord, {
        "run_id": run_id, "suite": row[0], "suite_path": row[1], "baseline": row[2], "started_at": row[3],
        "finished_at": row[4] or "", "dataset_hash": row[5] or "", "evalkit_version": row[6] or "",
        "command": row[7] or "", "warnings": json.loads(row[9] or "[]"), "candidates": candidates,
    }, f"run store: run {run_id}")
    return summary_json(record, json.loads(row[8] or "{}"))


def read_run(conn: sqlite3.Connection, run_id: str) -> RunResult:
    """Load a stored run, items and per-item values and all.

    Raises:
        StoreError: no run has this id.
    """
    row = conn.execute(
        "SELECT suite, suite_path, baseline, started_at, finished_at, dataset_hash, evalkit_version, command,"
        " run_dir, sections_json, warnings_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"no run '{run_id}' in the store")
    run = RunResult(
        run_id=run_id, suite_name=row[0], suite_path=row[1], baseline=row[2], candidates=[],
        started_at=row[3], finished_at=row[4] or "", dataset_hash=row[5] or "", evalkit_version=row[6] or "",
        command=row[7] or "", run_dir=Path(row[8]) if row[8] else None,
        sections=json.loads(row[9] or "{}"), warnings=json.loads(row[10] or "[]"),
    )
    for name, status, message, identity, seconds in conn.execute(
        "SELECT name, status, message, identity_json, seconds FROM candidates WHERE run_id = ? ORDER BY position",
        (run_id,),
    ):
        result = CandidateResult(name=name, status=status, message=message, seconds=seconds,
                                 identity=parse_record(CandidateIdentity, json.loads(identity),
                                                       f"run store: run {run_id}: candidate {name}: identity")
                                 if identity else None)
        result.items = list(_read_items(conn, run_id, name))
        for metric, item_id, value in conn.execute(
            "SELECT metric, item_id, value FROM item_values WHERE run_id = ? AND candidate = ? ORDER BY rowid",
            (run_id, name),
        ):
            result.item_values.setdefault(metric, {})[item_id] = value
        run.candidates.append(result)
    return run


def _read_items(conn: sqlite3.Connection, run_id: str, candidate: str) -> Iterator[ItemResult]:
    for item_id, fields, prompt, expected, prediction, scores in conn.execute(
        "SELECT item_id, fields_json, prompt, expected, prediction, scores_json FROM item_results"
        " WHERE run_id = ? AND candidate = ? ORDER BY position", (run_id, candidate),
    ):
        yield ItemResult(
            item_id=item_id, fields=json.loads(fields), prompt=prompt, expected=expected, prediction=prediction,
            scores={name: Score(float(value), reason) for name, (value, reason) in json.loads(scores).items()},
        )


# The store's SQLite schema and its migrations.
#
# Schema versions are kept in ``PRAGMA user_version`` and upgraded on open by the
# functions in ``MIGRATIONS`` (entry i upgrades version i to i + 1), each run inside the
# caller's one write transaction: a crash mid-migration leaves the previous version intact.

_SCHEMA_V1 = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    suite_path TEXT NOT NULL DEFAULT '',
    baseline TEXT NOT NULL DEFAULT '',
    config_hash TEXT,
    dataset_hash TEXT,
    git_commit TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    evalkit_version TEXT,
    command TEXT,
    run_dir TEXT,
    sections_json TEXT NOT NULL DEFAULT '{}',
    warnings_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX runs_by_suite ON runs (suite, started_at);
CREATE TABLE candidates (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    identity_json TEXT,
    model_fingerprint TEXT,
    adapter_hash TEXT,
    seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE item_results (
    run_id TEXT NOT NULL,
    candidate TEXT NOT NULL,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    fields_json TEXT NOT NULL,
    prompt TEXT NOT NULL,
    expected TEXT NOT NULL,
    prediction TEXT NOT NULL,
    scores_json TEXT NOT NULL,
    PRIMARY KEY (run_id, candidate, item_id)
);
CREATE TABLE item_values (
    run_id TEXT NOT NULL,
    candidate TEXT NOT NULL,
    metric TEXT NOT NULL,
    item_id TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, candidate, metric, item_id)
);
CREATE TABLE generation_cache (
    key TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    completion TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN thresholds_json TEXT;
CREATE TABLE run_metrics (
    run_id TEXT NOT NULL,
    candidate TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (run_id, candidate, metric)
);
"""


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the open transaction; run statement by statement instead.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    """Create the first schema: runs, candidates, items, item values, generation cache."""
    _execute_script(conn, _SCHEMA_V1)


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    """Add per-run metric means (for history and summaries) and thresholds; backfill the means."""
    _execute_script(conn, _SCHEMA_V2)
    run_ids = [row[0] for row in conn.execute("SELECT run_id FROM runs")]
    for run_id in run_ids:
        insert_metrics(conn, read_run(conn, run_id))


# Human labels from `evalkit view`: beside the model's results, never over them. One row
# per label; undoing deletes the row (each write is its own transaction).
_SCHEMA_V3 = """
CREATE TABLE labels (
    label_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    candidate TEXT NOT NULL,
    item_id TEXT NOT NULL,
    criterion TEXT NOT NULL,
    value REAL NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX labels_by_item ON labels (run_id, candidate, item_id)
"""


def _migrate_to_v3(conn: sqlite3.Connection) -> None:
    """Add the human labels table (``evalkit view``, ``evalkit labels export``)."""
    _execute_script(conn, _SCHEMA_V3)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_v1, _migrate_to_v2, _migrate_to_v3]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """Return the schema version recorded in the open file (0 for a new one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`; call inside one write transaction.

    Raises:
        StoreError: the file (``path``, for the message) was made by a newer evalkit.
    """
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this evalkit "
                         f"knows ({SCHEMA_VERSION}); upgrade evalkit or use another --store")
    for target in range(version, SCHEMA_VERSION):
        MIGRATIONS[target](conn)
    if version != SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# Where the store's file is, the store's connection and its transaction discipline.

T = TypeVar("T")

# How long one process waits on a lock inside SQLite (at most: capped by the notice
# interval, so waiting is reported), and how long it keeps retrying whole transactions
# after that (both far above any write evalkit makes).
BUSY_TIMEOUT_MS = 30_000
RETRY_SECONDS = 300.0
LOCK_NOTICE_SECONDS = 10.0
"""Seconds between two "still waiting for the lock" lines."""

# SQLite's primary result codes (the low byte of an extended code) that concern the file.
_DAMAGED = {11}  # SQLITE_CORRUPT
_NOT_A_DATABASE = {26}  # SQLITE_NOTADB
_READ_ONLY = {8}  # SQLITE_READONLY
_UNREADABLE = {3, 10, 13, 14, 23}  # SQLITE_PERM, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH


def store_error(path: Path, exc: sqlite3.Error, what: str = "run store") -> StoreError | None:
    """Return the StoreError for an SQLite error about the file itself, or None for any other error.

    Args:
        path: the database file, named in the message.
        exc: the error SQLite raised.
        what: what the file is, for the message ("run store", "judgment cache").
    """
    code = getattr(exc, "sqlite_errorcode", None)
    elsewhere = ", or pass --store with another path" if what == "run store" else ""
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _DAMAGED:
        return StoreError(
            f"{path}: the {what} is damaged ({exc}); check it with `sqlite3 {path} 'PRAGMA integrity_check'`, "
            f"then move the file (and any -wal/-shm beside it) away to start a new one{elsewhere}")
    if primary in _NOT_A_DATABASE:
        return StoreError(f"{path}: not a usable evalkit {what} ({exc}); is the path right? "
                          f"Move the file away{elsewhere}")
    if primary in _READ_ONLY:
        return StoreError(f"{path}: the {what} is read-only here ({exc}); this command writes to it and "
                          "needs write access to the file and its directory")
    if primary in _UNREADABLE:
        return StoreError(f"{path}: cannot use the {what} ({exc}); check the disk's free space and the "
                          "file's and its directory's permissions")
    return None


def _note_on_stderr(text: str) -> None:
    """Print a note line on stderr, as the CLI's plain progress lines are."""
    print(f"note: {text}", file=sys.stderr, flush=True)


class StoreConnection:
    """An open store file with its schema current; read and write through transactions.

    Args:
        path: the SQLite file; created, with its directory, when missing (not when
            ``read_only``).
        read_only: open the file read-only (readers: history, compare, report, export).
        on_wait: where "waiting for the lock" lines go (default: stderr).
        lock_notice_s: seconds between two such lines.

    Raises:
        StoreError: the file is not an SQLite database, is damaged or unreadable, was
            made by a newer evalkit, or (``read_only``) does not exist.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 on_wait: Callable[[str], None] | None = None,
                 lock_notice_s: float = LOCK_NOTICE_SECONDS) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._on_wait = on_wait or _note_on_stderr
        self._lock_notice_s = lock_notice_s
        # SQLite's own wait returns here at least once per notice interval.
        self._busy_timeout_ms = max(1, min(BUSY_TIMEOUT_MS, int(lock_notice_s * 1000)))
        self._conn = self._connect(immutable=False)
        try:
            self._retry(lambda: self._conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}"))
            if read_only:
                self._open_read_only()
            else:
                self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
                # WAL with synchronous=NORMAL never loses a committed transaction to a killed
                # process (only to a power cut), and commits are much cheaper than FULL.
                self._conn.execute("PRAGMA synchronous = NORMAL")
                if self._retry(lambda: user_version(self._conn)) != SCHEMA_VERSION:
                    self.write(lambda conn: upgrade_schema(conn, self.path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise store_error(self.path, exc) or StoreError(
                f"{self.path}: not a usable evalkit run store ({exc}); "
                "move the file away or pass --store with another path") from None
        except StoreError:
            self._conn.close()
            raise

    def _connect(self, immutable: bool) -> sqlite3.Connection:
        """Open the SQLite connection (read-only through a ``mode=ro`` URI when asked)."""
        try:
            if self.read_only:
                if not self.path.is_file():
                    raise StoreError(f"no run store at {self.path}; run a suite first or pass --store PATH")
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
                return sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_ms / 1000,
                                       isolation_level=None, check_same_thread=False)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(str(self.path), timeout=self._busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the run store ({exc}); "
                             "check the path and its permissions, or pass --store") from None

    def _open_read_only(self) -> None:
        """Check a read-only connection's schema; fall back to ``immutable`` on a read-only mount."""
        try:
            version = user_version(self._conn)  # not through _retry: its CANTOPEN is looked at here
        except sqlite3.OperationalError as exc:
            # A WAL file whose -shm index cannot be created (a read-only mount) cannot be
            # opened plainly; with no -wal file beside it no one can be writing it.
            wal = self.path.with_name(self.path.name + "-wal")
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != 14 or wal.exists():
                raise
            self._conn.close()
            self._conn = self._connect(immutable=True)
            version = self._retry(lambda: user_version(self._conn))
        self._conn.execute("PRAGMA query_only = ON")
        if version > SCHEMA_VERSION:
            upgrade_schema(self._conn, self.path)  # raises: made by a newer evalkit
        if version < SCHEMA_VERSION:
            if not os.access(self.path, os.W_OK):
                raise StoreError(f"{self.path}: made by an older evalkit and read-only here; open it once "
                                 "with write access (any `evalkit run` on it) to upgrade it")
            # Upgrade once through a writable connection, then read the upgraded file.
            StoreConnection(self.path, on_wait=self._on_wait, lock_notice_s=self._lock_notice_s).close()

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
        return self.read(user_version)

    def _retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while SQLite reports the database locked or busy.

        While it waits, a line says so every ``lock_notice_s`` seconds. An error about
        the file itself (damaged, unreadable, read-only) becomes a :class:`StoreError`
        (see :func:`store_error`); any other error propagates.
        """
        started = time.monotonic()
        deadline = started + RETRY_SECONDS
        next_notice = started + self._lock_notice_s
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                message = str(exc).lower()
                if "locked" not in message and "busy" not in message:
                    raise store_error(self.path, exc) or exc from None
                now = time.monotonic()
                if now > deadline:
                    raise StoreError(f"{self.path}: still locked by another process after "
                                     f"{RETRY_SECONDS:.0f} s; is a process stuck?") from None
                if now >= next_notice:
                    self._on_wait(f"{self.path}: waiting for another process to release the run store's lock "
                                  f"({now - started:.0f} s so far; giving up after {RETRY_SECONDS:.0f} s)")
                    next_notice = now + self._lock_notice_s
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
            except sqlite3.DatabaseError as exc:
                raise store_error(self.path, exc) or exc from None

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


# Where the run store lives: ``--store``, a suite's ``store:``, ``$EVALKIT_STORE``, or the data directory.
if TYPE_CHECKING:
    from evalkit.suite.config import SuiteConfig

STORE_FILENAME = "evalkit.db"
STORE_ENV = "EVALKIT_STORE"


def default_store_path() -> Path:
    """Return ``$EVALKIT_STORE`` if set, else ``evalkit.db`` in the data directory (see :mod:`evalkit.files.home`)."""
    override = os.environ.get(STORE_ENV)
    if override:
        return Path(override).expanduser()
    return store_file(STORE_FILENAME)


def resolve_store_path(suite: SuiteConfig | None = None, override: str | Path | None = None) -> Path:
    """Return the store a run uses: ``--store``, else the suite's ``store:``, else the default."""
    if override is not None:
        return Path(override).expanduser().resolve()
    if suite is not None and suite.store:
        return suite.resolve(suite.store)
    return default_store_path()
