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

The parts, each importing only those before it:

* :mod:`~evalkit.store.connection`: where the file is; a run into rows and back; the
  tables and their migrations (``PRAGMA user_version``); the connection and its
  transactions (WAL, ``BEGIN IMMEDIATE``, busy timeout, retry with backoff), so
  concurrent processes queue instead of failing;
* :mod:`~evalkit.store.cache`: the generation cache and its key, and the typed JSON caches;
* :mod:`~evalkit.store.runs`: :class:`RunStore`: save, load, list and summarise runs.
"""

from evalkit.store.cache import CachedGeneration, GenerationCache, generation_key, prompt_format_fingerprint
from evalkit.store.connection import (
    BUSY_TIMEOUT_MS,
    MIGRATIONS,
    RETRY_SECONDS,
    SCHEMA_VERSION,
    STORE_ENV,
    STORE_FILENAME,
    StoreConnection,
    default_store_path,
    resolve_store_path,
)
from evalkit.store.runs import MetricPoint, RunRecord, RunStore, git_commit, suite_config_hash

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "RETRY_SECONDS",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "STORE_FILENAME",
    "CachedGeneration",
    "GenerationCache",
    "MetricPoint",
    "RunRecord",
    "RunStore",
    "StoreConnection",
    "default_store_path",
    "generation_key",
    "git_commit",
    "prompt_format_fingerprint",
    "resolve_store_path",
    "suite_config_hash",
]
