"""The store's SQLite schema and its migrations.

Schema versions are kept in ``PRAGMA user_version`` and upgraded on open by the
functions in ``MIGRATIONS`` (entry i upgrades version i to i + 1), each run inside the
caller's one write transaction: a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from evalkit.errors import StoreError
from evalkit.store.rows import insert_metrics, read_run

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
