"""History: the suite's key metrics across stored runs, as trend charts.

The history is a list of run summaries (:meth:`RunResult.summary` dicts, oldest first),
which the caller reads from the run store; the report itself never opens the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from evalkit.record.results import RunResult
from evalkit.report.charts import trend_chart
from evalkit.report.metric_format import is_field_metric, is_judge_metric

MAX_RUNS = 20
MAX_CHARTS = 6


@dataclass
class TrendChart:
    """One metric across runs, one line per candidate."""

    metric: str
    svg: Markup


def _metric_values(summary: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for candidate in summary.get("candidates") or []:
        if candidate.get("status", "ok") == "ok":
            out[candidate["name"]] = {m: float(v) for m, v in (candidate.get("metrics") or {}).items()}
    for name, tasks in ((summary.get("sections") or {}).get("benchmarks") or {}).items():
        for task, result in tasks.items():
            if isinstance(result, Mapping) and "acc" in result:
                out.setdefault(name, {}).setdefault(task, float(result["acc"]))
    return out


def history_charts(run: RunResult, means: Mapping[str, Mapping[str, float]],
                   history: Sequence[Mapping[str, Any]]) -> list[TrendChart]:
    """Return trend charts of the key metrics over ``history`` plus this run (oldest first).

    Args:
        run: this run.
        means: this run's candidate -> metric -> mean over items.
        history: earlier runs' summaries (:meth:`RunResult.summary`), oldest first.

    Key metrics are the task-level checks, benchmark tasks and judge criteria (per-field
    accuracy is left to the field section). No charts when fewer than two runs exist.
    """
    summaries = [s for s in history if s.get("run_id") != run.run_id][-(MAX_RUNS - 1):]
    if not summaries:
        return []
    # This run as a summary, from means already computed (RunResult.summary recomputes them).
    summaries.append({"run_id": run.run_id, "started_at": run.started_at, "sections": run.sections,
                      "candidates": [{"name": name, "status": "ok", "metrics": dict(values)}
                                     for name, values in means.items()]})
    values = [_metric_values(s) for s in summaries]
    metrics: dict[str, None] = {}
    for per_run in values:
        for per_candidate in per_run.values():
            metrics.update({m: None for m in per_candidate if not is_field_metric(m)})
    key_metrics = sorted(metrics, key=is_judge_metric)[:MAX_CHARTS]
    candidates: dict[str, None] = {}
    for per_run in values:
        candidates.update(dict.fromkeys(per_run))
    labels = [str(s.get("run_id", "")) for s in summaries]  # run ids are start times: 20261128-101500
    charts = []
    for metric in key_metrics:
        series = {c: [per_run.get(c, {}).get(metric) for per_run in values] for c in candidates}
        series = {c: v for c, v in series.items() if any(x is not None for x in v)}
        charts.append(TrendChart(metric, trend_chart(metric, labels, series,
                                                     percent=not is_judge_metric(metric))))
    return charts
