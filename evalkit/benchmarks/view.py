"""General capability: benchmark accuracy per candidate and per-subject deltas as charts.

Reads the ``benchmarks`` section through its schema,
:data:`evalkit.benchmarks.spec.BenchmarksSection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from markupsafe import Markup

from evalkit.benchmarks.spec import BenchmarkScore, BenchmarksSection
from evalkit.contamination.view import benchmark_flags
from evalkit.record.results import RunResult
from evalkit.report.charts import delta_bar_chart, format_delta, format_value

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
    contamination: str = ""
    """Beside the score: how many of the task's items the candidate trained on (see :func:`benchmark_flags`)."""
    contaminated: bool = False


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
    measure: str = "accuracy"
    """What the score column is: ``accuracy``, or a measurement such as ``bits per byte (lower is better)``."""
    stderr_unit: str = "pt"


def _setup(result: BenchmarkScore) -> str:
    parts = [result.formulation or "", f"{result.num_fewshot}-shot" if result.num_fewshot is not None else ""]
    return ", ".join(p for p in parts if p)


def capability_view(run: RunResult, baselines: Mapping[str, str]) -> list[TaskView]:
    """Return one view per benchmark task (empty when the run has no benchmarks).

    Args:
        run: the run.
        baselines: candidate -> the candidate it is compared with.

    Raises:
        DataError: the run's benchmarks section does not have the section's shape.
    """
    section: BenchmarksSection = run.section("benchmarks") or {}
    flags = benchmark_flags(run)
    tasks: dict[str, None] = {}
    for per_task in section.values():
        tasks.update(dict.fromkeys(per_task))
    views = []
    for task in tasks:
        view = TaskView(task=task, rows=[])
        # A lower-is-better benchmark (bits per byte) is a measurement: its own units, its own direction.
        share = all(per_task[task].higher_is_better is not False for per_task in section.values() if task in per_task)
        if not share:
            view.measure, view.stderr_unit = f"{_measure_name(section, task)} (lower is better)", ""
        for candidate, per_task in section.items():
            result = per_task.get(task)
            if result is None:
                continue
            baseline = baselines.get(candidate, run.baseline)
            base = section.get(baseline, {}).get(task)
            delta = "" if base is None or candidate == baseline else format_delta(task, result.acc - base.acc, share)
            flag = flags.get((candidate, task))
            stderr = result.stderr or 0.0
            view.rows.append(TaskRow(candidate, format_value(task, result.acc, share),
                                     f"± {stderr * 100:.1f}" if share else f"± {stderr:.4f}",
                                     result.n or 0, delta, _setup(result),
                                     flag.text if flag else "", flag is not None and flag.contaminated))
            if base is None or candidate == baseline:
                continue
            subjects = [s for s in result.subjects if s in base.subjects]
            if not subjects:
                continue
            if share:
                deltas = [(result.subjects[s].acc - base.subjects[s].acc) * 100 for s in subjects]
            else:  # drawn as the change for the better, in % of the baseline's value (a rise is red)
                deltas = [-(result.subjects[s].acc - base.subjects[s].acc) / base.subjects[s].acc * 100
                          if base.subjects[s].acc else 0.0 for s in subjects]
            ranked = sorted(zip(subjects, deltas, strict=True), key=lambda pair: pair[1])
            worst = [f"{s} {format_delta(task, d / 100) if share else f'{-d:+.1f}%'} "
                     f"(n={_count(result.subjects[s].n)})"
                     for s, d in ranked[:WORST_SUBJECTS] if d < 0]
            svg = delta_bar_chart(f"{task}: {candidate} vs {baseline}, per subject",
                                  subjects, deltas, "pt" if share else "% better")
            view.charts.append(SubjectChart(candidate, svg, worst))
        views.append(view)
    return views


def _measure_name(section: BenchmarksSection, task: str) -> str:
    metric = next((per_task[task].metric for per_task in section.values() if task in per_task), None)
    return (metric or "score").replace("_", " ")


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)
