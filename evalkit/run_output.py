"""Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html``.

Files are written into a hidden staging directory that is renamed into place only when
all of them are complete, so a crashed or interrupted run never leaves a directory that
looks finished.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.results import RunResult


def write_run(run: RunResult, output_root: Path, history: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the run's files under ``output_root/<suite>/<run_id>/`` and return that path.

    Args:
        run: the finished run.
        output_root: the root of run directories.
        history: earlier runs' summaries, oldest first, for the report's trend section.
    """
    from evalkit.report import render_report

    suite_dir = output_root / run.suite_name
    suite_dir.mkdir(parents=True, exist_ok=True)
    final = suite_dir / run.run_id
    suffix = 1
    while final.exists():
        suffix += 1
        final = suite_dir / f"{run.run_id}-{suffix}"
    staging = suite_dir / f".{final.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        run.run_dir = final
        with (staging / "results.jsonl").open("w", encoding="utf-8") as handle:
            for candidate in run.candidates:
                for item in candidate.items:
                    handle.write(json.dumps(item.to_record(candidate.name), ensure_ascii=False) + "\n")
        (staging / "summary.json").write_text(
            json.dumps(run.summary(), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        (staging / "report.html").write_text(render_report(run, history=history), encoding="utf-8")
        staging.rename(final)
    except BaseException:
        run.run_dir = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
