"""The run store: SQLite run history, per-item results, and the generation cache.

One SQLite file (``$EVALKIT_STORE``, else ``evalkit.db`` in the data directory, unless a suite's
``store:`` or ``--store`` names another) holds:

* ``runs``: one row per run: suite, config hash, dataset hash, git commit of the suite's
  repository, start and end time, evalkit version, the thresholds in force, the run's
  sections (benchmark, judge and comparison results) and its summary;
* ``candidates``: per run and candidate: status, identity (model fingerprint, adapter
  hash, prompt hash), generation time;
* ``item_results``: per run, candidate and item: prompt, reference, prediction and every
  score (check and judge scores, with the judge's reasoning);
* ``item_values``: per-item values not tied to task items (benchmark correctness);
* ``run_metrics``: each candidate's mean per metric, for ``evalkit history``;
* ``generation_cache``: completions keyed by :func:`generation_key`.

Concurrency: the file is in WAL mode, so readers never block writers. Every write is
one ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front (a deferred
transaction that upgrades from read to write can fail at once, whatever the busy
timeout); waiting for the lock uses SQLite's busy timeout, and a transaction that still
meets "database is locked" is retried with backoff, so concurrent processes queue
instead of failing.

Schema versions are kept in ``PRAGMA user_version`` and upgraded on open by the
functions in ``MIGRATIONS`` (entry i upgrades version i to i + 1), each in one
transaction: a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from evalkit.checks import Score
from evalkit.digest import json_digest
from evalkit.errors import StoreError
from evalkit.home import store_file
from evalkit.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.run_dir import load_run_dir
from evalkit.safe_write import has_surrogates, json_text, safe_name, without_surrogates
from evalkit.thresholds import ThresholdPolicy

if TYPE_CHECKING:
    from evalkit.config import GenerationConfig, SuiteConfig

T = TypeVar("T")

STORE_FILENAME = "evalkit.db"
STORE_ENV = "EVALKIT_STORE"
# How long one process waits on a lock inside SQLite, and how long it keeps retrying
# whole transactions after that (both far above any write evalkit makes).
BUSY_TIMEOUT_MS = 30_000
RETRY_SECONDS = 300.0
_IN_CHUNK = 500  # SQLite's bound-parameter limit is far above this


def default_store_path() -> Path:
    """Return ``$EVALKIT_STORE`` if set, else ``evalkit.db`` in the data directory (see :mod:`evalkit.home`)."""
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


# ---------------------------------------------------------------------------- schema

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
        _insert_metrics(conn, _read_run(conn, run_id))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_v1, _migrate_to_v2]
SCHEMA_VERSION = len(MIGRATIONS)


# ------------------------------------------------------------------------ the store

@dataclass(frozen=True)
class RunRecord:
    """One stored run's metadata (no items).

    Attributes:
        run_id: the run's id.
        suite: the suite's name.
        started_at: ISO start time (UTC).
        finished_at: ISO end time (UTC).
        config_hash: SHA-256 of the validated suite config.
        dataset_hash: SHA-256 of the dataset file.
        git_commit: the suite repository's HEAD commit, when it is in one.
        evalkit_version: the version that made the run.
        run_dir: where the run's files were written, if they were.
        candidates: candidate name -> identity (None when skipped).
    """

    run_id: str
    suite: str
    started_at: str
    finished_at: str
    config_hash: str | None
    dataset_hash: str | None
    git_commit: str | None
    evalkit_version: str | None
    run_dir: str | None
    candidates: dict[str, dict[str, Any] | None]


@dataclass(frozen=True)
class MetricPoint:
    """One candidate's mean of one metric in one run.

    Attributes:
        run_id: the run.
        started_at: when the run started.
        candidate: the candidate's name.
        metric: the metric's name.
        value: the mean over items.
        n: items measured.
    """

    run_id: str
    started_at: str
    candidate: str
    metric: str
    value: float
    n: int


@dataclass(frozen=True)
class CachedGeneration:
    """A cached completion and the exact prompt text it answered."""

    prompt: str
    completion: str


class RunStore:
    """An open run store (see the module docstring); use as a context manager.

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
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path}: not a usable evalkit run store ({exc}); "
                             "move the file away or pass --store with another path") from None
        except StoreError:
            self._conn.close()
            raise
        self.cache = GenerationCache(self)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    # -------------------------------------------------------------- transactions

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

    def _migrate(self) -> None:
        def upgrade(conn: sqlite3.Connection) -> None:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this evalkit "
                                 f"knows ({SCHEMA_VERSION}); upgrade evalkit or use another --store")
            for target in range(version, SCHEMA_VERSION):
                MIGRATIONS[target](conn)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if current != SCHEMA_VERSION:
            self.write(upgrade)

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -------------------------------------------------------------------- runs

    def save_run(
        self, run: RunResult, suite: SuiteConfig | None = None, policy: ThresholdPolicy | None = None
    ) -> str:
        """Store a whole run in one transaction and return its id.

        When another run already has the id (two runs started in the same second), the
        run gets a suffixed id (``-2``, ``-3``...) and ``run.run_id`` is updated.

        Args:
            run: the run.
            suite: its suite, for the config hash (and thresholds when no policy).
            policy: the thresholds in force; default the suite's.
        """
        policy = policy or ThresholdPolicy.from_suite(suite)
        config_hash = suite_config_hash(suite) if suite is not None else None
        commit = git_commit(Path(run.suite_path).parent) if run.suite_path else None
        requested = run.run_id

        def insert(conn: sqlite3.Connection) -> str:
            run_id, suffix = requested, 1
            while conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                suffix += 1
                run_id = f"{requested}-{suffix}"
            _rename_run(run, run_id)
            conn.execute(
                "INSERT INTO runs (run_id, suite, suite_path, baseline, config_hash, dataset_hash, git_commit,"
                " started_at, finished_at, evalkit_version, command, run_dir, sections_json, warnings_json,"
                " thresholds_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, run.suite_name, _text(run.suite_path), run.baseline, config_hash, run.dataset_hash, commit,
                 run.started_at, run.finished_at, run.evalkit_version, _text(run.command),
                 str(run.run_dir) if run.run_dir else None, _dumps(run.sections), _dumps(run.warnings),
                 _dumps(policy.to_dict())),
            )
            _insert_candidates(conn, run)
            _insert_metrics(conn, run)
            return run_id

        try:
            return self.write(insert)
        except BaseException:
            _rename_run(run, requested)
            raise

    def set_run_dir(self, run_id: str, run_dir: Path) -> None:
        """Record where a stored run's files were written."""
        self.write(lambda conn: conn.execute("UPDATE runs SET run_dir = ? WHERE run_id = ?",
                                             (str(run_dir), run_id)))

    def has_run(self, run_id: str) -> bool:
        """Return True when a run with this id is stored."""
        return bool(self.read(lambda c: c.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()))

    def load_run(self, run_id: str) -> RunResult:
        """Load a stored run, items and all.

        Raises:
            StoreError: no run has this id.
        """
        if not self.has_run(run_id):
            raise StoreError(f"no run '{run_id}' in the store {self.path}; "
                             "list runs with `evalkit history SUITE`, or pass a run directory")
        safe_name(run_id, f"run store {self.path}: run_id")
        return self.read(lambda conn: _read_run(conn, run_id))

    def find_run(self, reference: str) -> RunResult:
        """Load a run from a run id or a run directory.

        A run directory whose run is in the store loads from the store (with per-item
        benchmark values); otherwise from its files.

        Raises:
            StoreError: the reference is neither a stored run id nor a run directory.
        """
        path = Path(reference).expanduser()
        if (path / "summary.json").is_file():
            try:
                run_id = str(json.loads((path / "summary.json").read_text(encoding="utf-8"))["run_id"])
            except (ValueError, KeyError, TypeError):
                run_id = ""
            if run_id and self.has_run(run_id):
                run = self.load_run(run_id)
                run.run_dir = path.resolve()
                return run
            return load_run_dir(path.resolve())
        if self.has_run(reference):
            return self.load_run(reference)
        hint = " (a directory without summary.json is not a run directory)" if path.is_dir() else ""
        raise StoreError(f"'{reference}' is neither a run id in the store {self.path} nor a run "
                         f"directory{hint}; list runs with `evalkit history SUITE`")

    def list_runs(self, suite: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Return stored runs, oldest first (the newest ``limit`` when given)."""

        def query(conn: sqlite3.Connection) -> list[RunRecord]:
            where, params = ("WHERE suite = ?", [suite]) if suite else ("", [])
            rows = conn.execute(
                f"SELECT run_id, suite, started_at, finished_at, config_hash, dataset_hash, git_commit,"
                f" evalkit_version, run_dir FROM runs {where} ORDER BY started_at DESC, run_id DESC"
                + (" LIMIT ?" if limit else ""),
                [*params, *([limit] if limit else [])],
            ).fetchall()
            records = []
            for row in reversed(rows):
                identities = {
                    name: json.loads(identity) if identity else None
                    for name, identity in conn.execute(
                        "SELECT name, identity_json FROM candidates WHERE run_id = ? ORDER BY position",
                        (row[0],))
                }
                records.append(RunRecord(row[0], row[1], row[2], row[3] or "", row[4], row[5], row[6],
                                         row[7], row[8], identities))
            return records

        return self.read(query)

    def suites(self) -> list[str]:
        """Return the names of suites with stored runs."""
        return self.read(lambda c: [r[0] for r in c.execute("SELECT DISTINCT suite FROM runs ORDER BY suite")])

    def metric_history(self, suite: str) -> list[MetricPoint]:
        """Return every candidate's metric means across the suite's runs, oldest first."""
        rows = self.read(lambda conn: conn.execute(
            "SELECT m.run_id, r.started_at, m.candidate, m.metric, m.value, m.n FROM run_metrics m"
            " JOIN runs r ON r.run_id = m.run_id WHERE r.suite = ? ORDER BY r.started_at, m.run_id",
            (suite,)).fetchall())
        return [MetricPoint(*row) for row in rows]

    def thresholds(self, run_id: str) -> ThresholdPolicy:
        """Return the thresholds in force for a stored run (the defaults for old runs)."""
        row = self.read(lambda c: c.execute("SELECT thresholds_json FROM runs WHERE run_id = ?",
                                            (run_id,)).fetchone())
        if row is None or not row[0]:
            return ThresholdPolicy()
        return ThresholdPolicy.from_dict(json.loads(row[0]))

    def run_summaries(self, suite: str, before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Return stored runs' summaries (as :meth:`RunResult.summary` makes them), oldest first.

        Built from the stored rows without loading items, so a long history is cheap.

        Args:
            suite: the suite's name.
            before: only runs other than this one that started no later than it.
            limit: the newest this many.
        """

        def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            params: list[Any] = [suite]
            extra = ""
            if before is not None:
                extra = (" AND run_id != ? AND started_at <= COALESCE("
                         "(SELECT started_at FROM runs WHERE run_id = ?), started_at)")
                params += [before, before]
            rows = conn.execute(
                f"SELECT run_id FROM runs WHERE suite = ?{extra}"
                " ORDER BY started_at DESC, run_id DESC LIMIT ?", [*params, limit]).fetchall()
            return [_read_summary(conn, row[0]) for row in reversed(rows)]

        return self.read(query)

    def count_runs(self) -> int:
        """Return how many runs are stored."""
        return int(self.read(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]))


class GenerationCache:
    """Completions stored by :func:`generation_key`, inside a run store."""

    def __init__(self, store: RunStore) -> None:
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
        now = _now()
        rows = [(key, _text(g.prompt), _text(g.completion), now) for key, g in entries.items()]
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
    """Return a SHA-256 over the files that turn messages into prompt text (tokenizer, chat template)."""
    digest = hashlib.sha256()
    for name in _PROMPT_FORMAT_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def suite_config_hash(suite: SuiteConfig) -> str:
    """Return a SHA-256 of the validated suite config (comments and key order don't count)."""
    return json_digest(suite.model_dump(mode="json"))


def git_commit(directory: Path) -> str | None:
    """Return the HEAD commit of the git repository holding ``directory``, if any."""
    try:
        result = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


# ----------------------------------------------------------------- row mapping

# One encoder for every row: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _dumps(value: Any) -> str:
    """JSON for a column: lone surrogates (which SQLite's UTF-8 cannot hold) as escapes, losslessly."""
    text = _ENCODER.encode(value)
    return json_text(value) if has_surrogates(text) else text


def _text(value: str) -> str:
    """Model text for a TEXT column: NUL is kept; a lone surrogate becomes U+FFFD."""
    return without_surrogates(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rename_run(run: RunResult, run_id: str) -> None:
    old = run.run_id
    run.run_id = run_id
    comparison = run.sections.get("comparison")
    if isinstance(comparison, dict):
        for key in ("baseline_run_id", "candidate_run_id"):
            if comparison.get(key) == old:
                comparison[key] = run_id


def _insert_candidates(conn: sqlite3.Connection, run: RunResult) -> None:
    for position, candidate in enumerate(run.candidates):
        identity = candidate.identity
        conn.execute(
            "INSERT INTO candidates (run_id, name, position, status, message, identity_json,"
            " model_fingerprint, adapter_hash, seconds) VALUES (?,?,?,?,?,?,?,?,?)",
            (run.run_id, candidate.name, position, candidate.status, _text(candidate.message),
             _dumps(asdict(identity)) if identity else None,
             identity.model_fingerprint if identity else None, identity.adapter_hash if identity else None,
             candidate.seconds),
        )
        conn.executemany(
            "INSERT INTO item_results (run_id, candidate, position, item_id, fields_json, prompt, expected,"
            " prediction, scores_json) VALUES (?,?,?,?,?,?,?,?,?)",
            [(run.run_id, candidate.name, index, _text(item.item_id), _dumps(item.fields), _text(item.prompt),
              _text(item.expected), _text(item.prediction),
              _dumps({n: [s.value, s.reason] for n, s in item.scores.items()}))
             for index, item in enumerate(candidate.items)],
        )
        conn.executemany(
            "INSERT INTO item_values (run_id, candidate, metric, item_id, value) VALUES (?,?,?,?,?)",
            [(run.run_id, candidate.name, metric, _text(item_id), float(value))
             for metric, values in candidate.item_values.items() for item_id, value in values.items()],
        )


def _insert_metrics(conn: sqlite3.Connection, run: RunResult) -> None:
    from evalkit.compare import metric_arrays

    for candidate in run.candidates:
        conn.executemany(
            "INSERT OR REPLACE INTO run_metrics (run_id, candidate, metric, value, n) VALUES (?,?,?,?,?)",
            [(run.run_id, candidate.name, metric, float(array.values.mean()), int(array.values.size))
             for metric, array in metric_arrays(candidate).items() if array.values.size])


def _read_summary(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
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
    return {"run_id": run_id, "suite": row[0], "suite_path": row[1], "baseline": row[2], "started_at": row[3],
            "finished_at": row[4] or "", "dataset_hash": row[5] or "", "evalkit_version": row[6] or "",
            "command": row[7] or "", "warnings": json.loads(row[9] or "[]"), "candidates": candidates,
            "sections": json.loads(row[8] or "{}")}


def _read_run(conn: sqlite3.Connection, run_id: str) -> RunResult:
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
        result = CandidateResult(name=name, status=status, message=message,
                                 identity=CandidateIdentity(**json.loads(identity)) if identity else None,
                                 seconds=seconds)
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

