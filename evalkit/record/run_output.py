"""Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html``.

Files are written into a hidden staging directory that is renamed into place only when
all of them are complete (:func:`evalkit.files.safe_write.staged_directory`), so a crashed or
interrupted run never leaves a directory that looks finished; the staging directories a
killed run left in the suite's folder are removed by the next run written there
(:func:`evalkit.files.safe_write.remove_stale_partials`). A run never replaces an existing
directory: an id already taken gets a ``-2``, ``-3`` ... suffix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.files.safe_write import confined_path, json_text, remove_stale_partials, staged_directory
from evalkit.record.results import RunResult


def write_run(run: RunResult, output_root: Path, history: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the run's files under ``output_root/<suite>/<run_id>/`` and return that path.

    Args:
        run: the finished run.
        output_root: the root of run directories.
        history: earlier runs' summaries, oldest first, for the report's trend section.

    Raises:
        ConfigError: the suite name or run id would leave ``output_root``.
    """
    from evalkit.report.render import render_report

    suite_dir = confined_path(output_root, run.suite_name, "suite name")
    final = confined_path(suite_dir, run.run_id, f"run id of suite '{run.suite_name}'")
    if run.started_at:
        remove_stale_partials(suite_dir, older_than=run.started_at)
    suffix = 1
    while final.exists() or final.is_symlink():
        suffix += 1
        final = suite_dir / f"{run.run_id}-{suffix}"
    run.run_dir = final
    try:
        with staged_directory(final, kind="run", replace=False) as staging:
            with (staging / "results.jsonl").open("w", encoding="utf-8") as handle:
                for candidate in run.candidates:
                    for item in candidate.items:
                        handle.write(json_text(item.to_record(candidate.name)) + "\n")
            (staging / "summary.json").write_text(json_text(run.summary(), indent=2) + "\n", encoding="utf-8")
            (staging / "report.html").write_text(render_report(run, history=history), encoding="utf-8")
    except BaseException:
        run.run_dir = None
        raise
    return final
