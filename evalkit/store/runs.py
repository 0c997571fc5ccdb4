"""The run store: runs, their summaries and metric history, on a :class:`StoreConnection`.

Also in this module:

* A candidate's metrics across a suite's stored runs: the trend, and drift from the first and best run.
See :mod:`evalkit.store` for the tables; rows are mapped by :mod:`evalkit.store.connection`.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.comparison.result import TOLERANCE, ThresholdPolicy
from evalkit.errors import StoreError
from evalkit.files.home import json_digest, safe_name
from evalkit.record.results import RunResult, written_sections
from evalkit.record.run_dir import load_run_dir
from evalkit.store.cache import GenerationCache
from evalkit.store.connection import (
    StoreConnection,
    column_json,
    column_text,
    insert_candidates,
    insert_metrics,
    read_run,
    read_summary,
    rename_run,
)

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.suite.config import SuiteConfig


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


class RunStore(StoreConnection):
    """An open run store (see :mod:`evalkit.store`); use as a context manager.

    Args:
        path: the SQLite file; created, with its directory, when missing.
        read_only: open it read-only, for commands that only read (see
            :class:`StoreConnection`): a store on a read-only mount can be read.
        on_wait: where "waiting for the lock" lines go (default: stderr).

    Attributes:
        cache: the generation cache in the same file.

    Raises:
        StoreError: the file is not an SQLite database, is damaged, or was made by a newer evalkit.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 on_wait: Callable[[str], None] | None = None) -> None:
        super().__init__(path, read_only=read_only, on_wait=on_wait)
        self.cache = GenerationCache(self)

    def save_run(
        self, run: RunResult, suite: SuiteConfig | None = None, policy: ThresholdPolicy | None = None,
        *, publish: Callable[[RunResult], Path] | None = None,
    ) -> str:
        """Store a whole run in one transaction and return its id.

        When another run already has the id (two runs started in the same second), the
        run gets a suffixed id (``-2``, ``-3``...) and ``run.run_id`` is updated.

        Args:
            run: the run.
            suite: its suite, for the config hash (and thresholds when no policy).
            policy: the thresholds in force; default the suite's.
            publish: writes the run's directory and returns it; called inside the
                transaction once the run has its final id and its rows are in, and the
                transaction commits only after it returned. So a stored run always has
                its directory: a kill, a full disk or an error while it is written leaves
                no run in the store (the directory's staging is removed, or left for the
                next run to tidy, :func:`evalkit.files.home.remove_stale_partials`).
        """
        policy = policy or ThresholdPolicy.from_suite(suite)
        config_hash = suite_config_hash(suite) if suite is not None else None
        commit = git_commit(Path(run.suite_path).parent) if run.suite_path else None
        requested = run.run_id
        published: list[str] = []  # the id the directory was written under, once written

        def insert(conn: sqlite3.Connection) -> str:
            run_id, suffix = requested, 1
            while conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                suffix += 1
                run_id = f"{requested}-{suffix}"
            rename_run(run, run_id)
            conn.execute(
                "INSERT INTO runs (run_id, suite, suite_path, baseline, config_hash, dataset_hash, git_commit,"
                " started_at, finished_at, evalkit_version, command, run_dir, sections_json, warnings_json,"
                " thresholds_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, run.suite_name, column_text(run.suite_path), run.baseline, config_hash, run.dataset_hash,
                 commit, run.started_at, run.finished_at, run.evalkit_version, column_text(run.command),
                 str(run.run_dir) if run.run_dir else None, column_json(written_sections(run.sections)),
                 column_json(run.warnings),
                 column_json(policy.to_dict())),
            )
            insert_candidates(conn, run)
            insert_metrics(conn, run)
            if publish is not None:
                # A retried transaction (the lock was lost) must not write a second directory.
                if published != [run_id]:
                    if published:
                        raise StoreError(f"{self.path}: run {published[0]} was written to {run.run_dir} but "
                                         f"another process took its id meanwhile; run the suite again")
                    run.run_dir = publish(run)
                    published.append(run_id)
                conn.execute("UPDATE runs SET run_dir = ? WHERE run_id = ?", (str(run.run_dir), run_id))
            return run_id

        try:
            return self.write(insert)
        except BaseException:
            rename_run(run, requested)
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
        return self.read(lambda conn: read_run(conn, run_id))

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

    def history_frame(self, suite: str) -> pd.DataFrame:
        """Return :meth:`metric_history` as rows ``run_id, started_at`` (UTC), ``candidate, metric, value, n``."""
        import pandas as pd  # loaded only when a frame is asked for

        frame = pd.DataFrame([asdict(point) for point in self.metric_history(suite)],
                             columns=["run_id", "started_at", "candidate", "metric", "value", "n"])
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
        return frame

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
            return [read_summary(conn, row[0]) for row in reversed(rows)]

        return self.read(query)

    def count_runs(self) -> int:
        """Return how many runs are stored."""
        return int(self.read(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]))


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


# A candidate's metrics across a suite's stored runs: the trend, and drift from the first and best run.
#
# ``evalkit history`` shows these; drift is judged on the runs' means alone, and
# ``evalkit compare FIRST LATEST`` runs the paired tests (:mod:`evalkit.comparison.compare`).

@dataclass
class MetricTrend:
    """One candidate's metric across a suite's stored runs, oldest first.

    Attributes:
        candidate: the candidate's name.
        metric: the metric's name.
        run_ids: the runs that measured it.
        values: its mean in each of those runs.
        threshold: the tolerated drop.
        drift_from_first: latest - first.
        drift_from_best: latest - best (0 or negative).
        best_run_id: the run with the highest value (the earliest on ties).
        drifted_from_first: the latest run dropped beyond the threshold from the first.
        drifted_from_best: the latest run dropped beyond the threshold from the best.
    """

    candidate: str
    metric: str
    run_ids: list[str]
    values: list[float]
    threshold: str
    drift_from_first: float
    drift_from_best: float
    best_run_id: str
    drifted_from_first: bool
    drifted_from_best: bool

    @property
    def drifted(self) -> bool:
        """True when the latest run dropped beyond the threshold from the first or the best."""
        return self.drifted_from_first or self.drifted_from_best


def metric_trends(
    points: Iterable[tuple[str, str, str, float]], policy: ThresholdPolicy | None = None
) -> list[MetricTrend]:
    """Turn per-run metric means into trends, flagging drift against the first and best run.

    Every metric is read as higher-is-better (true of every evalkit metric). Drift is
    judged on the means alone; ``evalkit compare FIRST LATEST`` runs the paired tests.

    Args:
        points: (run id, candidate, metric, value), in run order, oldest first.
        policy: the thresholds (those of the latest run, typically).
    """
    policy = policy or ThresholdPolicy()
    series: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
    for run_id, candidate, metric, value in points:
        run_ids, values = series.setdefault((candidate, metric), ([], []))
        run_ids.append(run_id)
        values.append(float(value))
    trends = []
    for (candidate, metric), (run_ids, values) in series.items():
        threshold = policy.threshold(metric)
        best_index = values.index(max(values))  # the first best, as numpy's argmax picks
        first, best, latest = values[0], values[best_index], values[-1]
        trends.append(MetricTrend(
            candidate=candidate, metric=metric, run_ids=run_ids, values=values, threshold=str(threshold),
            drift_from_first=latest - first, drift_from_best=latest - best, best_run_id=run_ids[best_index],
            drifted_from_first=first - latest > threshold.allowed_drop(first) + TOLERANCE,
            drifted_from_best=best - latest > threshold.allowed_drop(best) + TOLERANCE,
        ))
    return trends
