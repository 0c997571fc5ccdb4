"""Where a candidate lost general capability: its drop against the baseline, per subject.

The verdict (regressed or not, with paired statistics) is the comparison's
(:mod:`evalkit.comparison.compare`, from the per-item values); this module says *where* the drop
is: the overall change and the subjects that dropped most, for the benchmarks section
of the run summary and the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.benchmarks.section import BaselineDrop, SubjectDrop

__all__ = ["SubjectDrop", "describe_drop", "drop_summary", "subject_drops"]


def subject_drops(
    baseline: Mapping[str, Mapping[str, Any]], candidate: Mapping[str, Mapping[str, Any]],
    higher_is_better: bool = True,
) -> list[SubjectDrop]:
    """Return every subject both measured, the worst change first (ties by name).

    Args:
        baseline: subject -> ``{"acc": float, "n": int}`` (the section's ``subjects``).
        candidate: the same for the candidate.
        higher_is_better: the metric's direction: when False, a rise is the worst change.
    """
    drops = [
        SubjectDrop(
            subject=subject,
            baseline_acc=float(baseline[subject]["acc"]),
            acc=float(scores["acc"]),
            delta=float(scores["acc"]) - float(baseline[subject]["acc"]),
            n=int(scores["n"]),
        )
        for subject, scores in candidate.items()
        if subject in baseline
    ]
    sign = 1.0 if higher_is_better else -1.0
    return sorted(drops, key=lambda d: (sign * d.delta, d.subject))


def drop_summary(
    baseline_name: str,
    baseline: Mapping[str, Any],
    candidate: Mapping[str, Any],
    max_drop: str,
    worst: int = 5,
    higher_is_better: bool = True,
) -> BaselineDrop:
    """Summarise a candidate's change on one benchmark against the baseline.

    Args:
        baseline_name: the baseline candidate.
        baseline: the baseline's benchmark entry (``acc``, ``subjects`` ...).
        candidate: the candidate's benchmark entry.
        max_drop: the threshold in effect (``3%`` or ``2pt``), recorded beside the drop.
        worst: how many of the most-dropped subjects to list.
        higher_is_better: the metric's direction (bits per byte: False, a rise is worse).

    Returns:
        The entry's ``vs_baseline`` record; only subjects that got worse are listed in
        ``worst_subjects``, the worst first.
    """
    base_acc = float(baseline["acc"])
    acc = float(candidate["acc"])
    drops = subject_drops(baseline.get("subjects", {}), candidate.get("subjects", {}), higher_is_better)
    sign = 1.0 if higher_is_better else -1.0
    summary = BaselineDrop(
        baseline=baseline_name,
        baseline_acc=base_acc,
        acc=acc,
        delta=acc - base_acc,
        relative_delta=(acc - base_acc) / base_acc if base_acc else None,
        max_drop=max_drop,
        worst_subjects=[d for d in drops[:worst] if sign * d.delta < 0],
    )
    if not higher_is_better:  # set only when lower is better, so older sections keep their keys
        summary.higher_is_better = False
    return summary


def describe_drop(candidate: str, task: str, summary: BaselineDrop) -> str:
    """Return one line saying how much a candidate dropped and where most.

    Example: ``lora: mmlu_mini 0.262 -> 0.241 (-2.1pt, -8.0%); worst: anatomy -20.0pt, ...``;
    a metric whose lower values are better is written in its own units and says so
    (``lora: general_text 0.912 -> 1.020 (+0.1080, +11.8%, lower is better); worst: dialogue +0.1500``).
    """
    relative = summary.relative_delta
    lower_better = summary.higher_is_better is False

    def change_of(delta: float) -> str:
        return f"{delta:+.4f}" if lower_better else f"{delta * 100:+.1f}pt"

    change = change_of(summary.delta) + (f", {relative * 100:+.1f}%" if relative is not None else "")
    change += ", lower is better" if lower_better else ""
    worst = ", ".join(f"{d.subject} {change_of(d.delta)}" for d in summary.worst_subjects[:3])
    line = f"{candidate}: {task} {summary.baseline_acc:.3f} -> {summary.acc:.3f} ({change})"
    return f"{line}; worst: {worst}" if worst else line
