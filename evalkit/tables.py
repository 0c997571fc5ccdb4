"""Results as pandas DataFrames: a run's items × metrics, a suite's history, a comparison.

pandas is imported inside each function, so importing evalkit stays light.

Shapes:

* :func:`run_frame`: one row per candidate and item (index ``candidate, item_id``),
  columns ``prompt, expected, prediction`` and one column per metric (the item's value;
  NaN where a metric was not measured on that item). Benchmark items (``item_values``)
  are rows of their own with empty text columns. ``reasons=True`` adds a
  ``<metric>.reason`` column beside each check or judge metric.
* :func:`history_frame`: one row per run, candidate and metric (the mean), oldest first.
* :func:`comparison_frame`: one row per candidate and metric of a comparison, with
  every field of :class:`evalkit.compare.MetricComparison`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.compare import Comparison
    from evalkit.results import RunResult
    from evalkit.store import MetricPoint

TEXT_COLUMNS = ("prompt", "expected", "prediction")


def run_frame(run: RunResult, reasons: bool = False) -> pd.DataFrame:
    """Return a run's per-item results: index ``(candidate, item_id)``, one column per metric."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    for candidate in run.candidates:
        metrics.update(dict.fromkeys(candidate.metric_names()))
        by_id: dict[str, dict[str, Any]] = {}
        for item in candidate.items:
            row: dict[str, Any] = {"candidate": candidate.name, "item_id": item.item_id,
                                   "prompt": item.prompt, "expected": item.expected, "prediction": item.prediction}
            for name, score in item.scores.items():
                row[name] = score.value
                if reasons:
                    row[f"{name}.reason"] = score.reason
            by_id[item.item_id] = row
            rows.append(row)
        for metric, values in candidate.item_values.items():
            for item_id, value in values.items():
                key = f"{metric}\0{item_id}"  # benchmark ids live in their own namespace
                row = by_id.setdefault(key, {"candidate": candidate.name, "item_id": item_id})
                if len(row) == 2:
                    rows.append(row)
                row[metric] = value
    columns = ["candidate", "item_id", *TEXT_COLUMNS]
    for metric in metrics:
        columns.append(metric)
        if reasons and any(f"{metric}.reason" in row for row in rows):
            columns.append(f"{metric}.reason")
    frame = pd.DataFrame(rows, columns=columns)
    for column in metrics:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.set_index(["candidate", "item_id"])


def history_frame(points: Sequence[MetricPoint]) -> pd.DataFrame:
    """Return stored metric means as rows ``run_id, started_at, candidate, metric, value, n``."""
    import pandas as pd

    frame = pd.DataFrame([asdict(point) for point in points],
                         columns=["run_id", "started_at", "candidate", "metric", "value", "n"])
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
    return frame


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """Return one row per candidate and metric of a comparison (index ``candidate, metric``)."""
    import pandas as pd

    rows = []
    for candidate in comparison.candidates.values():
        for metric in candidate.metrics.values():
            record = asdict(metric)
            record["n_pass_to_fail"] = len(metric.pass_to_fail)
            record["n_fail_to_pass"] = len(metric.fail_to_pass)
            rows.append({"candidate": candidate.candidate, "baseline": candidate.baseline, **record})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["candidate", "metric"]).set_index(["candidate", "metric"])
    return frame.set_index(["candidate", "metric"])
