"""A candidate's metrics across a suite's stored runs: the trend, and drift from the first and best run.

``evalkit history`` shows these; drift is judged on the runs' means alone, and
``evalkit compare FIRST LATEST`` runs the paired tests (:mod:`evalkit.comparison.compare`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from evalkit.comparison.result import TOLERANCE
from evalkit.comparison.thresholds import ThresholdPolicy

__all__ = ["MetricTrend", "metric_trends"]


@dataclass
class MetricTrend:
    """One candidate's metric across a suite's stored runs, oldest first.

    Attributes:
        candidate: the candidate's name.
        metric: the metric's name.
        run_ids: the runs that measured it.
        values: its mean in each of those runs.
        threshold: the tolerated drop.
        drift_from_first: latest - first.
        drift_from_best: latest - best (0 or negative).
        best_run_id: the run with the highest value (the earliest on ties).
        drifted_from_first: the latest run dropped beyond the threshold from the first.
        drifted_from_best: the latest run dropped beyond the threshold from the best.
    """

    candidate: str
    metric: str
    run_ids: list[str]
    values: list[float]
    threshold: str
    drift_from_first: float
    drift_from_best: float
    best_run_id: str
    drifted_from_first: bool
    drifted_from_best: bool

    @property
    def drifted(self) -> bool:
        """True when the latest run dropped beyond the threshold from the first or the best."""
        return self.drifted_from_first or self.drifted_from_best


def metric_trends(
    points: Iterable[tuple[str, str, str, float]], policy: ThresholdPolicy | None = None
) -> list[MetricTrend]:
    """Turn per-run metric means into trends, flagging drift against the first and best run.

    Every metric is read as higher-is-better (true of every evalkit metric). Drift is
    judged on the means alone; ``evalkit compare FIRST LATEST`` runs the paired tests.

    Args:
        points: (run id, candidate, metric, value), in run order, oldest first.
        policy: the thresholds (those of the latest run, typically).
    """
    policy = policy or ThresholdPolicy()
    series: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
    for run_id, candidate, metric, value in points:
        run_ids, values = series.setdefault((candidate, metric), ([], []))
        run_ids.append(run_id)
        values.append(float(value))
    trends = []
    for (candidate, metric), (run_ids, values) in series.items():
        threshold = policy.threshold(metric)
        best_index = int(np.argmax(values))
        first, best, latest = values[0], values[best_index], values[-1]
        trends.append(MetricTrend(
            candidate=candidate, metric=metric, run_ids=run_ids, values=values, threshold=str(threshold),
            drift_from_first=latest - first, drift_from_best=latest - best, best_run_id=run_ids[best_index],
            drifted_from_first=first - latest > threshold.allowed_drop(first) + TOLERANCE,
            drifted_from_best=best - latest > threshold.allowed_drop(best) + TOLERANCE,
        ))
    return trends
