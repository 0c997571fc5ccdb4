"""One report for two runs: each candidate of the later run against its namesake in the earlier.

:func:`evalkit.comparison.compare.compare_runs` pairs the candidates; this module folds both runs
into one :class:`RunResult` whose candidates are named ``<name> · <run id>``, so every
section of the report (tables, flips, failure cases, capability) shows the two sides
next to each other. :func:`identity_view` gives the report's "What changed" section: each
pair's identity diff (:mod:`evalkit.comparison.identity`), shown before the metrics.

Also in this module:

* History: the suite's key metrics across stored runs, as trend charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from markupsafe import Markup

from evalkit.bars.result import BarResult
from evalkit.benchmarks.section import BenchmarksSection
from evalkit.comparison.identity import shown_value
from evalkit.judges.section import JudgesSection
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.run_sections import comparison_section
from evalkit.report.charts import is_field_metric, is_judge_metric, trend_chart


def side_name(candidate: str, run: RunResult) -> str:
    """Return the name a candidate of ``run`` carries in the two-run report."""
    return f"{candidate} · {run.run_id}"


def _renamed_keys(mapping: Mapping[str, Any] | None, names: Mapping[str, str]) -> dict[str, Any]:
    return {names[k]: v for k, v in (mapping or {}).items() if k in names}


def _merge_judges(before: RunResult, after: RunResult, names_before: Mapping[str, str],
                  names_after: Mapping[str, str]) -> JudgesSection:
    merged: JudgesSection = {}
    for run, names in ((before, names_before), (after, names_after)):
        judges: JudgesSection = run.section("judges") or {}
        for rubric, entry in judges.items():
            target = merged.get(rubric)
            kept = entry if target is None or run is after else target  # the later run's judge and calibration
            merged[rubric] = kept.model_copy(update={
                "per_candidate": {**(target.per_candidate if target else {}),
                                  **_renamed_keys(entry.per_candidate, names)},
                "errors": {**(target.errors if target else {}), **_renamed_keys(entry.errors, names)},
                "pairwise": {**((target.pairwise or {}) if target else {}), **_renamed_keys(entry.pairwise, names)},
            })
    return merged


def merge_runs(before: RunResult, after: RunResult, comparison: Mapping[str, Any]) -> RunResult:
    """Fold two runs and their comparison (``Comparison.to_dict()``) into one run to report.

    Args:
        before: the baseline run.
        after: the candidate run.
        comparison: :func:`evalkit.comparison.compare.compare_runs` (before, after), as a dict.

    Returns:
        A run whose candidates are the compared pairs, earlier side first.
    """
    pairs = [(str(entry["baseline"]), str(name)) for name, entry in (comparison.get("candidates") or {}).items()]
    names_before = {c.name: side_name(c.name, before) for c in before.candidates}
    names_after = {c.name: side_name(c.name, after) for c in after.candidates}
    candidates: list[CandidateResult] = []
    for base, cand in pairs:
        candidates.append(replace(before.candidate(base), name=names_before[base]))
        candidates.append(replace(after.candidate(cand), name=names_after[cand]))
    candidates += [replace(c, name=names_after[c.name]) for c in after.candidates if c.status == "skipped"]
    renamed_comparison = {
        **comparison, "baseline": "",
        "candidates": {
            names_after[name]: {**entry, "candidate": names_after[name], "baseline": names_before[entry["baseline"]]}
            for name, entry in (comparison.get("candidates") or {}).items()
        },
    }
    benchmarks: BenchmarksSection = {**_renamed_keys(before.section("benchmarks"), names_before),
                                     **_renamed_keys(after.section("benchmarks"), names_after)}
    bars: list[BarResult] = [bar.model_copy(update={"candidate": names_after.get(bar.candidate, bar.candidate)})
                             for bar in after.section("bars") or []]
    judges = _merge_judges(before, after, names_before, names_after)
    warnings = [f"run {before.run_id}: {w}" for w in before.warnings] + list(after.warnings)
    warnings += list(comparison.get("notes") or [])
    merged = RunResult(
        run_id=f"{before.run_id} vs {after.run_id}", suite_name=after.suite_name, suite_path=after.suite_path,
        baseline=candidates[0].name if candidates else "", candidates=candidates, started_at=after.started_at,
        finished_at=after.finished_at,
        dataset_hash=after.dataset_hash if after.dataset_hash == before.dataset_hash
        else f"{before.dataset_hash} (run {before.run_id}) / {after.dataset_hash} (run {after.run_id})",
        evalkit_version=after.evalkit_version, command=after.command, warnings=warnings,
    )
    # Each side's sections as they were stored: only the fields that were set are written back.
    merged.set_section("comparison", renamed_comparison, only_set=True)
    if benchmarks:
        merged.set_section("benchmarks", benchmarks, only_set=True)
    if judges:
        merged.set_section("judges", judges, only_set=True)
    if bars:
        merged.set_section("bars", bars, only_set=True)
    return merged


def identity_view(run: RunResult) -> list[dict[str, Any]]:
    """Return each compared pair's identity diff for the report (empty: no pair compared across runs).

    Each entry: ``candidate`` and ``baseline`` (their names in the report), ``summary``
    (``prompt changed``, ``identity unchanged``...), ``changes`` as (field, before,
    after) with digests cut, ``prompt_diff`` (a unified diff, autoescaped by the page)
    and ``notes``.
    """
    comparison = comparison_section(run.sections, f"run {run.run_id}")
    if comparison is None:
        return []
    return [{"candidate": compared.candidate, "baseline": compared.baseline, "summary": diff.summary,
             "changes": [(change.field, shown_value(change.before), shown_value(change.after))
                         for change in diff.changes],
             "prompt_diff": diff.prompt_diff, "notes": diff.notes}
            for compared in comparison.candidates.values() if (diff := compared.identity) is not None]


# History: the suite's key metrics across stored runs, as trend charts.
#
# The history is a list of run summaries (:meth:`RunResult.summary` dicts, oldest first),
# which the caller reads from the run store; the report itself never opens the store.

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
