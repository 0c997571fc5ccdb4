"""Turn a RunResult, or two runs side by side, into one self-contained HTML report.

Each section has one context function (in its own module here) and one template under
``templates/sections/``; a section appears only when the run has its data. Every string
from a model or a dataset reaches the page through jinja2's autoescape or through
:func:`evalkit.report.render.json_for_script`, never through ``|safe``. The page's only
script is inlined and allowed by its hash in the Content-Security-Policy, which forbids
every network request, so the file works offline and an injected script could not run
even if escaping failed. :func:`json_for_script` (at the end) embeds data so that no byte
of it can end the element it sits in.

Also here:

* One report for two runs: each candidate of the later run against its namesake in the earlier
  (:func:`merge_runs`, :func:`identity_view`).
* History: the suite's key metrics across stored runs, as trend charts (:func:`history_charts`).
* Run metadata: what exactly was evaluated, by whom, from which data, and how fast (:func:`run_metadata`).
* Per-field accuracy and a confusion matrix for each enum field of a JSON classifier (:func:`confusion_matrices`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from evalkit.bars.spec import BarResult
from evalkit.bars.view import (
    bar_rows,
    baseline_of,
    build_verdict,
    candidate_means,
    comparison_metrics,
    item_means,
    metric_rows,
    table_candidates,
)
from evalkit.benchmarks.spec import BenchmarksSection
from evalkit.benchmarks.view import capability_view
from evalkit.checks.registry import parse_json_object
from evalkit.comparison.compare import shown_value
from evalkit.contamination.view import contamination_view
from evalkit.judges.section import JudgesSection
from evalkit.judges.view import judges_view
from evalkit.parity.checks import agrees
from evalkit.parity.checks import describe as describe_agreement
from evalkit.record.results import CandidateResult, RunResult, comparison_section
from evalkit.record.run_facts import MergeAgreementSection
from evalkit.report.charts import is_field_metric, is_judge_metric, trend_chart
from evalkit.report.failures import (
    MAX_FAILURES_SHOWN,
    control_views,
    cost_view,
    cut,
    failure_data,
    sampling_view,
    slice_tables,
    sweep_view,
)

# One report for two runs: each candidate of the later run against its namesake in the earlier.
#
# :func:`evalkit.comparison.compare.compare_runs` pairs the candidates; this module folds both runs
# into one :class:`RunResult` whose candidates are named ``<name> · <run id>``, so every
# section of the report (tables, flips, failure cases, capability) shows the two sides
# next to each other. :func:`identity_view` gives the report's "What changed" section: each
# pair's identity diff (:mod:`evalkit.comparison.compare`), shown before the metrics.
#
# Also in this module:
#
# * History: the suite's key metrics across stored runs, as trend charts.

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


# Run metadata: what exactly was evaluated, by whom, from which data, and how fast.

@dataclass
class CandidateMetadata:
    """One candidate's identity and throughput."""

    name: str
    status: str
    model: str
    fingerprint: str
    adapter: str
    adapter_hash: str
    backend: str
    prompt_hash: str
    items: int
    seconds: str
    items_per_second: str


@dataclass
class RunMetadata:
    """The run as a whole."""

    rows: list[tuple[str, str]]
    candidates: list[CandidateMetadata]


def _duration(started: str, finished: str) -> str:
    try:
        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return "–"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.0f} s"


def run_metadata(run: RunResult) -> RunMetadata:
    """Return the metadata rows and per-candidate identities."""
    rows = [
        ("suite", f"{run.suite_name} ({run.suite_path})" if run.suite_path else run.suite_name),
        ("run id", run.run_id),
        ("started", run.started_at),
        ("finished", run.finished_at or "–"),
        ("duration", _duration(run.started_at, run.finished_at) if run.finished_at else "–"),
        ("dataset SHA-256", run.dataset_hash or "–"),
        ("evalkit version", run.evalkit_version or "–"),
        ("command", run.command or "–"),
    ]
    candidates = []
    for c in run.candidates:
        identity = c.identity
        candidates.append(CandidateMetadata(
            name=c.name, status=c.status if c.status == "ok" else f"skipped: {c.message}",
            model=identity.model_source if identity else "–",
            fingerprint=identity.model_fingerprint if identity else "–",
            adapter=(identity.adapter or "–") if identity else "–",
            adapter_hash=(identity.adapter_hash or "–") if identity else "–",
            backend=identity.backend if identity else "–",
            prompt_hash=identity.prompt_hash if identity else "–",
            items=len(c.items), seconds=f"{c.seconds:.1f}",
            items_per_second=f"{len(c.items) / c.seconds:.2f}" if c.seconds > 0 and c.items else "–",
        ))
    return RunMetadata(rows, candidates)


# Per-field accuracy and a confusion matrix for each enum field of a JSON classifier.
#
# Fields and their labels are read from the expected outputs themselves: a field is an
# enum field when every expected value of it is a short string and it takes at most
# ``MAX_LABELS`` distinct values. A prediction's value outside those labels counts as
# ``(other)``; a missing field or an unparseable prediction as ``(missing)``.

MAX_LABELS = 20
OTHER = "(other)"
MISSING = "(missing)"


@dataclass
class ConfusionMatrix:
    """Counts of expected label (rows) against predicted label (columns) for one candidate.

    Attributes:
        field: the JSON field.
        candidate: the candidate.
        labels: the expected labels (row order).
        columns: labels plus ``(other)`` and ``(missing)`` when they occur.
        counts: counts[row][column].
        accuracy: share of items whose predicted label equals the expected one.
    """

    field: str
    candidate: str
    labels: list[str]
    columns: list[str]
    counts: list[list[int]]
    accuracy: float

    def shade(self, row: int, column: int) -> str:
        """Return a CSS background for a cell: green on the diagonal, red off it, by row share."""
        total = sum(self.counts[row]) or 1
        share = self.counts[row][column] / total
        if share == 0:
            return ""
        hue = "46,125,50" if self.columns[column] == self.labels[row] else "198,40,40"
        return f"background: rgba({hue},{0.12 + 0.6 * share:.2f})"


def _as_object(text: str) -> dict[str, Any] | None:
    value, reason = parse_json_object(text)
    return value if not reason and isinstance(value, dict) else None


def enum_fields(run: RunResult) -> dict[str, list[str]]:
    """Return enum field -> its labels (sorted), read from the expected outputs."""
    labels: dict[str, set[str]] = {}
    rejected: set[str] = set()
    seen: set[str] = set()
    for candidate in run.candidates:
        for item in candidate.items:
            if item.item_id in seen:
                continue
            seen.add(item.item_id)
            expected = _as_object(item.expected)
            if expected is None:
                continue
            for name, value in expected.items():
                if not isinstance(value, str) or len(value) > 60:
                    rejected.add(name)
                elif name not in rejected:
                    labels.setdefault(name, set()).add(value)
    return {name: sorted(values) for name, values in labels.items()
            if name not in rejected and 1 < len(values) <= MAX_LABELS}


def confusion_matrices(run: RunResult) -> list[list[ConfusionMatrix]]:
    """Return, per enum field, one confusion matrix per evaluated candidate (suite order)."""
    fields = enum_fields(run)
    if not fields:
        return []
    expected_cache: dict[str, dict[str, Any] | None] = {}

    def expected_object(text: str) -> dict[str, Any] | None:
        # The same reference recurs once per candidate: parse it once.
        if text not in expected_cache:
            expected_cache[text] = _as_object(text)
        return expected_cache[text]

    parsed = {
        candidate.name: [(expected_object(i.expected), _as_object(i.prediction)) for i in candidate.items]
        for candidate in run.candidates if candidate.status == "ok" and candidate.items
    }
    out = []
    for name, labels in fields.items():
        per_candidate = []
        for candidate, pairs in parsed.items():
            grid: dict[tuple[str, str], int] = {}
            right = total = 0
            for expected, got in pairs:
                if expected is None or expected.get(name) not in labels:
                    continue
                value = got.get(name) if got is not None else None
                column = MISSING if value is None else value if value in labels else OTHER
                key = (str(expected[name]), column)
                grid[key] = grid.get(key, 0) + 1
                total += 1
                right += column == expected[name]
            columns = list(labels) + [c for c in (OTHER, MISSING) if any(k[1] == c for k in grid)]
            counts = [[grid.get((row, column), 0) for column in columns] for row in labels]
            per_candidate.append(ConfusionMatrix(name, candidate, list(labels), columns, counts,
                                                 right / total if total else 0.0))
        out.append(per_candidate)
    return out


# Turn a RunResult into one self-contained HTML report.

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("evalkit.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Any text a run carries may be huge (a 1 MB answer quoted in a warning): shown cut, with its length.
_ENV.filters["cut"] = cut

_STATUS_TITLE = {"blocked": "NOT DEPLOYABLE", "deployable": "deployable", "undecided": "UNDECIDED",
                 "no_bars": "no bars", "not_evaluated": "no verdict", "baseline": "no verdict",
                 "unknown": "no verdict"}


@cache
def _static(name: str) -> str:
    text = resources.files("evalkit.report").joinpath("static", name).read_text(encoding="utf-8")
    # Inlined verbatim: it must not be able to end its own element.
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"static/{name} must not contain a closing script or style tag")
    return text


def content_security_policy(script: str) -> str:
    """Return the page's CSP: no network at all, inline styles, and only our own script.

    Args:
        script: the exact text of the page's one inline script.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; "
            f"script-src 'sha256-{digest}'; "
            "style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; "
            "base-uri 'none'; form-action 'none'")


def merge_agreement_lines(run: RunResult) -> list[tuple[str, bool]]:
    """Return (sentence, at least 99%?) for each merged candidate compared with its adapter in the run."""
    found: MergeAgreementSection = run.section("merge_agreement") or {}
    return [(describe_agreement(name, entry), agrees(entry)) for name, entry in found.items()]


def report_context(run: RunResult, history: Sequence[Mapping[str, Any]] = (),
                   compare_runs: tuple[str, str] | None = None) -> dict[str, Any]:
    """Return the template context for every section the run has data for.

    Args:
        run: the run.
        history: earlier runs of the suite as summary dicts, oldest first (from the store).
        compare_runs: (baseline run id, candidate run id) when the report compares two runs.
    """
    verdict = build_verdict(run)
    per_item = item_means(run)
    means = candidate_means(run, per_item)
    compared = comparison_metrics(run)
    failures = failure_data(run, compared, {name: baseline_of(run, name) for name in compared})
    context: dict[str, Any] = {
        "run": run,
        "compare_runs": compare_runs,
        "page_title": f"{_STATUS_TITLE[verdict.status]} · {run.suite_name} · {run.run_id}",
        "verdict": verdict,
        "bars": bar_rows(run),
        "identity": identity_view(run),
        "table_candidates": table_candidates(run),
        "main_rows": metric_rows(run, means, include=lambda m: not is_field_metric(m)),
        "field_rows": metric_rows(run, means, include=is_field_metric),
        "matrices": confusion_matrices(run),
        "capability": capability_view(run, {name: baseline_of(run, name) for name in run.sections.get(
            "benchmarks") or {}}),
        "contamination": contamination_view(run),
        "judges": judges_view(run),
        "controls": control_views(run),
        "sampling": sampling_view(run),
        "failures": failures,
        "max_failures_shown": MAX_FAILURES_SHOWN,
        "history": history_charts(run, per_item, history),
        "sweep": sweep_view(run),
        "slice_tables": slice_tables(run),
        "cost": cost_view(run),
        "metadata": run_metadata(run),
        "merge_agreement": merge_agreement_lines(run),
        "css": Markup(_static("report.css")),
        "js": Markup(_static("report.js")),
        # Our own constant text (quotes and all), not data: no escaping needed.
        "csp": Markup(content_security_policy(_static("report.js"))),
        "failure_json": json_for_script(failures.payload),
    }
    sections = [("verdict", "Verdict", True), ("bars", "Bars", bool(context["bars"])),
                ("warnings", "Warnings", bool(run.warnings)),
                ("changes", "What changed", bool(context["identity"])),
                ("metrics", "Metrics", True),
                ("fields", "Fields", bool(context["field_rows"] or context["matrices"])),
                ("capability", "General capability", bool(context["capability"])),
                ("contamination", "Contamination", context["contamination"] is not None),
                ("sweep", "Sweep", context["sweep"] is not None),
                ("slices", "Slices", bool(context["slice_tables"])),
                ("usage", "Cost and latency", context["cost"] is not None),
                ("controls", "Format control", bool(context["controls"])),
                ("sampling", "Repeated samples", context["sampling"] is not None),
                ("judges", "Judges", bool(context["judges"])),
                ("failures", "Failure cases", bool(failures.total)), ("flips", "Flips", bool(failures.flips)),
                ("history", "History", bool(context["history"])), ("metadata", "Metadata", True)]
    context["nav"] = [(anchor, label) for anchor, label, present in sections if present]
    return context


def render_report(run: RunResult, *, history: Sequence[Mapping[str, Any]] = (),
                  compare_runs: tuple[str, str] | None = None) -> str:
    """Render the run's HTML report as one self-contained string.

    Args:
        run: the run.
        history: earlier runs of the suite as :meth:`RunResult.summary` dicts, oldest
            first; the history section appears when there is at least one.
        compare_runs: (baseline run id, candidate run id) for a report comparing two runs.

    Returns:
        The HTML document.
    """
    html = _ENV.get_template("report.html.j2").render(**report_context(run, history, compare_runs))
    return printable_text(html)


# Embed data in the report page so that no byte of it can end the element it sits in.
# `<` and `>` could close the script element or open a comment; `&` could start an
# entity in some parsers; U+2028/2029 end a line in older JavaScript; lone surrogates
# cannot be written as UTF-8 at all.
_UNSAFE_IN_SCRIPT = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_for_script(value: Any) -> Markup:
    """Return ``value`` as JSON text that is safe inside a ``<script>`` element.

    Args:
        value: a JSON-ready value (dicts, lists, strings, numbers, booleans, None).

    Returns:
        Markup to place between ``<script type="application/json">`` and ``</script>``.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(_UNSAFE_IN_SCRIPT.sub(_escape_char, text))


def printable_text(html: str) -> str:
    """Return ``html`` with characters UTF-8 cannot encode (lone surrogates) replaced."""
    try:
        html.encode("utf-8")
    except UnicodeEncodeError:
        return html.encode("utf-8", "replace").decode("utf-8")
    return html
