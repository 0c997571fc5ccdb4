"""The benchmark results cache: one SQLite file, ``$EVALKIT_HOME/benchmarks.sqlite``.

A benchmark's outcome on one model is keyed by everything that decides it (see
:func:`benchmark_key`): the base model's and the adapter's fingerprints, the scoring
dtype and device, the lm-eval task (for the bundled MMLU its name already carries a
digest of the selected questions, their formulation and few-shot prefixes; for a task of
your own, a digest of its ``include_path`` files), the spec fields that change what is
scored, and the evalkit and lm-eval versions. An unchanged re-run reads the outcome back
and scores nothing; any change to one of those parts misses the cache and scores afresh.

It sits beside the judgment cache (the same key -> JSON store, in its own file) and,
like it, apart from the run store: a cache can be deleted at any time.
"""

from __future__ import annotations

from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit.benchmarks.evaluate import BenchmarkOutcome, BenchmarkTask, SubjectScore
from evalkit.files.digest import files_digest, json_digest
from evalkit.files.home import cache_home
from evalkit.judges.cache import JudgmentCache
from evalkit.record.environment import evalkit_version

CACHE_FILE = "benchmarks.sqlite"
_KEY_VERSION = 1


def default_cache_path() -> Path:
    """Return the cache file's default place: ``benchmarks.sqlite`` in evalkit's cache directory."""
    return cache_home() / CACHE_FILE


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def task_files_digest(include_path: Path | None) -> str | None:
    """Return a SHA-256 over every file under a task directory (names and bytes), or None."""
    if include_path is None or not include_path.is_dir():
        return None
    files = sorted(p for p in include_path.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    return files_digest(include_path, [str(path.relative_to(include_path)) for path in files])


def benchmark_key(
    task: BenchmarkTask, model_fingerprint: str, adapter_hash: str | None, dtype: str, device: str,
) -> str:
    """Return the cache key of one benchmark on one model variant (see the module docstring).

    ``batch_size`` is left out, as in the generation cache: it changes throughput, not
    which answer scores highest.
    """
    spec = task.spec
    # The bundled MMLU task's name is a digest of its data; its files need not be read.
    files = None if task.formulation is not None else task_files_digest(task.include_path)
    payload = {
        "key_version": _KEY_VERSION,
        "model": model_fingerprint,
        "adapter": adapter_hash,
        "dtype": dtype,
        "device": device,
        "task": task.task_name,
        "task_files": files,
        "include_defaults": task.include_defaults,
        "metric": task.metric,
        "formulation": task.formulation,
        "num_fewshot": spec.num_fewshot,
        "lm_num_fewshot": task.num_fewshot,
        "limit": spec.limit,
        "subjects": spec.subjects,
        "limit_per_subject": spec.limit_per_subject,
        "evalkit": evalkit_version(),
        "lm_eval": _package_version("lm_eval"),
    }
    return json_digest(payload)


def outcome_to_record(outcome: BenchmarkOutcome) -> dict[str, Any]:
    """Return the JSON-ready form of an outcome."""
    return asdict(outcome)


def outcome_from_record(record: dict[str, Any]) -> BenchmarkOutcome | None:
    """Rebuild an outcome from its stored form; None when the record is not one (a miss)."""
    try:
        subjects = {name: SubjectScore(**score) for name, score in record["subjects"].items()}
        return BenchmarkOutcome(
            acc=float(record["acc"]), stderr=float(record["stderr"]), metric=str(record["metric"]),
            items={str(k): float(v) for k, v in record["items"].items()}, subjects=subjects,
            seconds=float(record.get("seconds", 0.0)),
            higher_is_better=bool(record.get("higher_is_better", True)),
            lm_eval_scores={str(k): float(v) for k, v in record.get("lm_eval_scores", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


class BenchmarkCache:
    """Benchmark outcomes stored by :func:`benchmark_key`; use as a context manager.

    Args:
        path: the SQLite file; default :func:`default_cache_path`.

    Raises:
        StoreError: the file cannot be opened.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._store = JudgmentCache(path or default_cache_path())

    def get(self, key: str) -> BenchmarkOutcome | None:
        """Return the cached outcome for ``key``, or None."""
        record = self._store.get(key)
        return outcome_from_record(record) if record is not None else None

    def put(self, key: str, outcome: BenchmarkOutcome) -> None:
        """Store an outcome under ``key`` (replacing any)."""
        self._store.put(key, outcome_to_record(outcome))

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        """Close the database."""
        self._store.close()

    def __enter__(self) -> BenchmarkCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
