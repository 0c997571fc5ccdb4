"""Results as pandas DataFrames: a run's items × metrics, a suite's history, a comparison.

pandas is imported inside each function, so importing evalkit stays light.

Shapes:

* :func:`run_frame` (built in :mod:`evalkit.record.results`, which ``RunResult.to_pandas``
  calls without importing anything above it): one row per candidate and item (index ``candidate, item_id``),
  columns ``prompt, expected, prediction`` and one column per metric (the item's value;
  NaN where a metric was not measured on that item). Benchmark items (``item_values``)
  are rows of their own with empty text columns. ``reasons=True`` adds a
  ``<metric>.reason`` column beside each check or judge metric.
* :func:`history_frame`: one row per run, candidate and metric (the mean), oldest first.
* :func:`comparison_frame`: one row per candidate and metric of a comparison, with
  every field of :class:`evalkit.comparison.compare.MetricComparison`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from evalkit.record.results import TEXT_COLUMNS as TEXT_COLUMNS
from evalkit.record.results import run_frame as run_frame

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.comparison.compare import Comparison
    from evalkit.store import MetricPoint


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
            record["n_pass_to_fail"] = metric.n_pass_to_fail
            record["n_fail_to_pass"] = metric.n_fail_to_pass
            rows.append({"candidate": candidate.candidate, "baseline": candidate.baseline, **record})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["candidate", "metric"]).set_index(["candidate", "metric"])
    return frame.set_index(["candidate", "metric"])
