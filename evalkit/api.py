"""The seams the CLI, the pytest plugin and user code share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.bars import record_bars
from evalkit.config import SuiteConfig, load_suite
from evalkit.progress import Progress
from evalkit.results import RunResult
from evalkit.run_output import write_run
from evalkit.runner import execute_suite
from evalkit.store import RunStore, resolve_store_path


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
) -> RunResult:
    """Run a suite, save it in the run store and (by default) write its run directory.

    Args:
        suite: a suite file or an already loaded suite.
        output_dir: root of run directories; default the suite's ``output_dir``.
        progress: progress reporter; default silent.
        candidates: run only these candidates.
        command: the command line to record.
        write: write ``results.jsonl``, ``summary.json`` and ``report.html``.
        store: the run store; default the suite's ``store:``, else ``$EVALKIT_HOME/evalkit.db``.
        cache: reuse and fill the store's generation cache (``--no-cache`` turns it off).

    Returns:
        The run's result; ``run_dir`` is set when it was written.

    Raises:
        EvalkitError: a config, data or model error (see :mod:`evalkit.errors`).
    """
    config = suite if isinstance(suite, SuiteConfig) else load_suite(suite)
    if candidates:
        for name in candidates:
            config.candidate(name)
    # Opened first, so that a bad store path fails before any generation.
    with RunStore(resolve_store_path(config, store)) as run_store:
        run = execute_suite(config, progress=progress, only=candidates, command=command,
                            cache=run_store.cache if cache else None)
        record_bars(config, run)
        run_store.save_run(run, config)
        if write:
            root = Path(output_dir) if output_dir is not None else config.resolve(config.output_dir)
            history = run_store.run_summaries(run.suite_name, before=run.run_id, limit=20)
            write_run(run, root, history=history)
            if run.run_dir is not None:
                run_store.set_run_dir(run.run_id, run.run_dir)
    return run
