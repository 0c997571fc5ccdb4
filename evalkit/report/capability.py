"""General capability: benchmark accuracy per candidate and per-subject deltas as charts.

Reads the ``benchmarks`` section ({candidate: {task: {"acc", "stderr", "n", "subjects":
{subject: {"acc", "n"}}, ...}}}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from evalkit.report.charts import delta_bar_chart
from evalkit.report.metric_format import format_delta, format_value
from evalkit.results import RunResult

WORST_SUBJECTS = 5


@dataclass
class TaskRow:
    """One candidate's score on a benchmark task."""

    candidate: str
    acc: str
    stderr: str
    n: int
    delta: str
    setup: str


@dataclass
class SubjectChart:
    """Per-subject deltas of one candidate against the baseline on one task."""

    candidate: str
    svg: Markup
    worst: list[str]


@dataclass
class TaskView:
    """One benchmark task: the table of candidates and a chart per non-baseline candidate."""

    task: str
    rows: list[TaskRow]
    charts: list[SubjectChart] = field(default_factory=list)


def _setup(result: Mapping[str, Any]) -> str:
    parts = [str(result.get("formulation", "")),
             f"{result.get('num_fewshot', 0)}-shot" if "num_fewshot" in result else ""]
    return ", ".join(p for p in parts if p)


def capability_view(run: RunResult, baselines: Mapping[str, str]) -> list[TaskView]:
    """Return one view per benchmark task (empty when the run has no benchmarks).

    Args:
        run: the run.
        baselines: candidate -> the candidate it is compared with.
    """
    section: Mapping[str, Mapping[str, Any]] = run.sections.get("benchmarks") or {}
    tasks: dict[str, None] = {}
    for per_task in section.values():
        tasks.update(dict.fromkeys(per_task))
    views = []
    for task in tasks:
        view = TaskView(task=task, rows=[])
        for candidate, per_task in section.items():
            result = per_task.get(task)
            if not isinstance(result, Mapping):
                continue
            baseline = baselines.get(candidate, run.baseline)
            base = section.get(baseline, {}).get(task)
            acc = float(result.get("acc", 0.0))
            delta = "" if base is None or candidate == baseline else format_delta(task, acc - float(base["acc"]))
            view.rows.append(TaskRow(candidate, format_value(task, acc),
                                     f"± {float(result.get('stderr', 0.0)) * 100:.1f}",
                                     int(result.get("n", 0)), delta, _setup(result)))
            if base is None or candidate == baseline:
                continue
            base_subjects = base.get("subjects") or {}
            subjects = [s for s in (result.get("subjects") or {}) if s in base_subjects]
            if not subjects:
                continue
            deltas = [(float(result["subjects"][s]["acc"]) - float(base_subjects[s]["acc"])) * 100
                      for s in subjects]
            ranked = sorted(zip(subjects, deltas, strict=True), key=lambda pair: pair[1])
            worst = [f"{s} {format_delta(task, d / 100)} (n={result['subjects'][s].get('n', '?')})"
                     for s, d in ranked[:WORST_SUBJECTS] if d < 0]
            svg = delta_bar_chart(f"{task}: {candidate} vs {baseline}, per subject",
                                  subjects, deltas)
            view.charts.append(SubjectChart(candidate, svg, worst))
        views.append(view)
    return views
