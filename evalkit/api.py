"""The seams the CLI, the pytest plugin and user code share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import StoreError
from evalkit.progress import Progress, library_bars_silenced
from evalkit.record.results import RunResult
from evalkit.record.run_dir import record_resolved_suite, resolved_suite_section, write_run
from evalkit.runner import execute_suite
from evalkit.stages import SuiteInputs
from evalkit.store import RunStore, default_store_path, resolve_store_path
from evalkit.suite.config import SuiteConfig, apply_limit, load_suite, load_suite_with_overrides

if TYPE_CHECKING:
    import pandas as pd


def run_suite(
    suite: str | Path | SuiteConfig,
    *,
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
    candidates: Sequence[str] | None = None,
    command: str = "",
    write: bool = True,
    store: str | Path | None = None,
    cache: bool = True,
    allow_missing: Sequence[str] = (),
    overrides: Sequence[str] = (),
    limit: int | None = None,
    planned: SuiteInputs | None = None,
) -> RunResult:
    """Run a suite, save it in the run store and (by default) write its run directory.

    Args:
        suite: a suite file or an already loaded suite.
        output_dir: root of run directories; default the suite's ``output_dir``.
        progress: progress reporter; default silent.
        candidates: run only these candidates.
        command: the command line to record.
        write: write ``results.jsonl``, ``summary.json`` and ``report.html``.
        store: the run store; default the suite's ``store:``, else ``$EVALKIT_STORE``, else ``evalkit.db``
            in the data directory (see :mod:`evalkit.files.home`).
        cache: reuse and fill the store's generation cache (``--no-cache`` turns it off).
        overrides: ``key.sub=value`` changes to the suite file, validated like it (``--set``).
        limit: evaluate the first N items and a smaller benchmark sample (``--limit``),
            recorded in the run's warnings and ``limit`` section.
        allow_missing: candidates that may be missing (``--allow-missing``), besides those
            the suite marks ``optional: true``; any other candidate that cannot be
            evaluated stops the run before generation (ConfigError, exit 2).
        planned: the loaded suite's :func:`evalkit.runner.plan_suite`, when the caller
            planned it already; its candidates are the ones run. With ``limit``, the
            suite must have been cut (:func:`evalkit.suite.config.apply_limit`) before planning.

    Returns:
        The run's result; ``run_dir`` is set when it was written.

    Raises:
        EvalkitError: a config, data or model error (see :mod:`evalkit.errors`).
    """
    if isinstance(suite, SuiteConfig):
        if overrides:
            raise TypeError("overrides apply to a suite file; pass its path, not a loaded suite")
        config = suite
    else:
        config = load_suite_with_overrides(suite, overrides) if overrides else load_suite(suite)
    if planned is not None and planned.suite is not config:
        raise TypeError("planned= is the plan of the loaded suite passed as suite=")
    if planned is not None and limit is not None and (config.dataset.limit or limit + 1) > limit:
        raise TypeError("with planned= and limit=, apply_limit to the suite before planning it")
    run_limit = apply_limit(config, limit) if limit is not None else None  # a no-op when applied already
    for name in [*(candidates or ()), *allow_missing]:
        config.candidate(name)
    resolved = resolved_suite_section(config, candidates=candidates, allow_missing=allow_missing, limit=limit)
    # Opened first, so that a bad store path fails before any generation.
    with RunStore(resolve_store_path(config, store)) as run_store, library_bars_silenced():
        run = execute_suite(config, progress=progress, only=candidates, command=command,
                            cache=run_store.cache if cache else None, allow_missing=allow_missing,
                            planned=planned)
        if run_limit is not None:
            run.warnings.append(run_limit.describe())
            run.set_section("limit", run_limit)
        record_resolved_suite(run, resolved)
        if not write:
            run_store.save_run(run, config)
            return run
        root = Path(output_dir) if output_dir is not None else config.resolve(config.output_dir)
        # Earlier runs only: one that started later (a concurrent run) is not this run's history.
        history = [summary for summary in run_store.run_summaries(run.suite_name, before=run.run_id, limit=20)
                   if summary["started_at"] <= run.started_at]
        # The directory is written inside the store's transaction, before it commits: a kill
        # or a full disk leaves no stored run without its directory (RunStore.save_run).
        run_store.save_run(run, config, publish=lambda saved: write_run(saved, root, history=history))
    return run


def load_run(reference: str | Path, store: str | Path | None = None) -> RunResult:
    """Load a run by id (from the store) or by its run directory.

    Args:
        reference: a run id, or a run directory (with ``summary.json``).
        store: the run store; default ``$EVALKIT_STORE``, else the data directory's.

    Raises:
        StoreError: neither a stored run nor a run directory.
    """
    store_path = Path(store).expanduser() if store is not None else default_store_path()
    if store_path.is_file():
        with RunStore(store_path, read_only=True) as run_store:
            return run_store.find_run(str(reference))
    directory = Path(reference).expanduser()
    if (directory / "summary.json").is_file():
        from evalkit.record.run_dir import load_run_dir

        return load_run_dir(directory.resolve())
    raise StoreError(f"no run store at {store_path}, and '{reference}' is not a run directory; "
                     "pass store=PATH (--store) or a run directory")


def history_frame(suite: str, store: str | Path | None = None) -> pd.DataFrame:
    """Return a suite's stored metric means as a DataFrame, oldest run first.

    Columns: ``run_id, started_at`` (UTC timestamps), ``candidate, metric, value, n``;
    ``frame.pivot_table(index="started_at", columns=["candidate", "metric"], values="value")``
    gives one series per candidate and metric.

    Raises:
        StoreError: no store at the path.
    """
    store_path = Path(store).expanduser() if store is not None else default_store_path()
    if not store_path.is_file():
        raise StoreError(f"no run store at {store_path}; run the suite first or pass store=PATH")
    with RunStore(store_path, read_only=True) as run_store:
        return run_store.history_frame(suite)


def comparison_frame(
    baseline_run: str | Path | RunResult,
    candidate_run: str | Path | RunResult | None = None,
    *,
    store: str | Path | None = None,
    baseline: str | None = None,
    candidate: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare candidates (within one run, or across two) and return one row per candidate and metric.

    Runs are :class:`RunResult` objects or references :func:`load_run` takes. The columns
    are :class:`evalkit.comparison.compare.MetricComparison`'s fields (delta, interval, p-value,
    verdict ...), indexed by ``candidate, metric``.
    """
    # numpy (via compare): loaded only when this compares
    from evalkit.comparison.compare import compare_candidates, compare_runs

    first = baseline_run if isinstance(baseline_run, RunResult) else load_run(baseline_run, store)
    if candidate_run is None:
        comparison = compare_candidates(first, seed=seed, baseline=baseline,
                                        candidates=[candidate] if candidate else None)
    else:
        second = candidate_run if isinstance(candidate_run, RunResult) else load_run(candidate_run, store)
        comparison = compare_runs(first, second, baseline=baseline, candidate=candidate, seed=seed)
    return comparison.to_pandas()
