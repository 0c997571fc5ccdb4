"""``evalkit run --from RUN``: run again exactly the suite a stored run ran.

The suite comes from the run's ``resolved_suite`` record (:mod:`evalkit.record.resolved_suite`),
not from the suite file, so editing the file afterwards changes nothing. The rerun is
planned first and refused (ConfigError, exit 2, naming each difference) when the
dataset or a candidate's model, adapter, prompt, backend or engine options are no
longer what the run used; nothing is generated then. Library versions that changed
are a warning of the new run, not a refusal.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.api import load_run, run_suite
from evalkit.errors import ConfigError
from evalkit.progress import Progress
from evalkit.record.resolved_suite import rerun_differences, suite_from_run, version_changes
from evalkit.record.results import RunResult
from evalkit.runner import plan_suite
from evalkit.suite.overrides import apply_limit

__all__ = ["rerun"]


def rerun(
    reference: str | Path,
    *,
    store: str | Path | None = None,
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
    command: str = "",
    cache: bool = True,
) -> RunResult:
    """Run again the resolved suite of the run ``reference`` (a run id or run directory).

    Args:
        reference: a stored run's id, or a run directory.
        store: the run store to find the run in and save the rerun to (default as :func:`run_suite`).
        output_dir: root of run directories; default the recorded suite's ``output_dir``.
        progress: progress reporter; default silent.
        command: the command line to record.
        cache: reuse the store's generation cache.

    Raises:
        ConfigError: the run records no resolved suite, or the rerun would differ (each
            difference named); StoreError: no such run.
    """
    previous = load_run(reference, store)
    config, record = suite_from_run(previous)
    if record.limit is not None:
        apply_limit(config, record.limit)  # the record holds the cuts already: this only re-derives them
    planned = plan_suite(config, progress=progress, only=record.candidates, allow_missing=record.allow_missing)
    differences = rerun_differences(previous, planned)
    if differences:
        raise ConfigError(f"cannot rerun {previous.run_id} exactly: {'; '.join(differences)}; "
                          f"run the suite file instead (evalkit run {record.suite_file})")
    changed = version_changes(previous)
    if changed and progress is not None:
        progress.note(f"rerunning {previous.run_id} with other library versions: {', '.join(changed)}")
    return run_suite(config, output_dir=output_dir, progress=progress, candidates=record.candidates,
                    command=command, store=store, cache=cache, allow_missing=record.allow_missing,
                    limit=record.limit, planned=planned)
