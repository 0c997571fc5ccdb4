"""The failure cases and flips, as one compact JSON document the page's script reads.

Only items that failed a pass/fail check are embedded, once per candidate, and at most
``MAX_FAILURES_SHOWN`` per candidate: the worst ones (most failed checks first, then in
item order), so the page's size does not grow with the items; the heading says how many
there are in all, and results.jsonl and the run store hold every one. An item's expected
output and input are embedded once however many candidates failed it. Long texts are cut
at ``MAX_TEXT_CHARS`` so that one runaway generation cannot bloat the file. The page
renders one page of cases at a time with ``textContent``.

Also in this module:

* Controls and repeated samples: the constrained base beside the fine-tune, and flaky items.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.comparison.result import MetricComparison
from evalkit.record.results import ItemResult, RunResult
from evalkit.record.run_facts import ControlsSection, SamplingSection
from evalkit.report.charts import is_field_metric, is_judge_metric

MAX_TEXT_CHARS = 8000
MAX_FAILURES_SHOWN = 500
"""Failure cases embedded per candidate (the worst ones); the rest are counted, not shown."""
MAX_INPUT_VALUE_CHARS = 400
FLIP_IDS_SHOWN = 8


def cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with a note saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut here; {len(text):,} characters in all]"


def is_pass_fail_metric(metric: str) -> bool:
    """Return True for metrics whose score < 1 marks an item as a failure case."""
    return not is_judge_metric(metric)


def input_summary(item: ItemResult) -> str:
    """Return the item's input fields as ``name: value`` lines (the expected output left out)."""
    lines = []
    for name, value in item.fields.items():
        text = value if isinstance(value, str) else repr(value)
        if text.strip() == item.expected.strip():
            continue
        lines.append(f"{name}: {cut(text, MAX_INPUT_VALUE_CHARS)}")
    return "\n".join(lines)


@dataclass
class FlipSide:
    """Items that flipped one way: how many, the first ids, and the viewer's filter index."""

    count: int = 0
    shown_ids: list[str] = field(default_factory=list)
    index: int | None = None


@dataclass
class FlipRow:
    """Items that flipped on one metric for one candidate against its baseline."""

    candidate: str
    metric: str
    pass_to_fail: FlipSide
    fail_to_pass: FlipSide


@dataclass
class FailureData:
    """The embedded document and what the HTML around it needs to know."""

    payload: dict[str, Any]
    candidates: list[str]
    checks: list[str]
    fields: list[str]
    total: int
    """Candidate × item failures in the run."""
    flips: list[FlipRow] = field(default_factory=list)
    shown: int = 0
    """Of those, the ones embedded (at most ``MAX_FAILURES_SHOWN`` per candidate)."""


class _Interned:
    """Assigns each distinct string an index, so repeated strings are embedded once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    def values(self) -> list[str]:
        return list(self.index)


def failure_data(run: RunResult, flips_by_candidate: Mapping[str, Mapping[str, MetricComparison]],
                 baselines: Mapping[str, str]) -> FailureData:
    """Build the embedded failure document and the flips table.

    Args:
        run: the run.
        flips_by_candidate: candidate -> metric -> its comparison (with ``pass_to_fail``
            and ``fail_to_pass`` item id lists).
        baselines: candidate -> the candidate it was compared with.
    """
    # Candidates under review first, baselines last: the reviewer reads those first.
    evaluated = sorted((c for c in run.candidates if c.status == "ok"),
                       key=lambda c: c.name in set(baselines.values()))
    candidates = [c.name for c in evaluated]
    checks, fields, reasons, item_index = _Interned(), _Interned(), _Interned(), _Interned()
    items: list[list[str]] = []
    records: list[list[Any]] = []
    total = 0
    for candidate_no, candidate in enumerate(evaluated):
        # One pass counts every failure and keeps the worst few: most failed checks, then item order.
        worst: list[tuple[int, int]] = []
        for position, item in enumerate(candidate.items):
            failures = sum(1 for name, score in item.scores.items() if score.value < 1.0 and is_pass_fail_metric(name))
            if not failures:
                continue
            total += 1
            if len(worst) < MAX_FAILURES_SHOWN:
                heapq.heappush(worst, (failures, -position))
            elif (failures, -position) > worst[0]:
                heapq.heapreplace(worst, (failures, -position))
        for _, negative_position in sorted(worst, reverse=True):
            item = candidate.items[-negative_position]
            failed = [(name, score) for name, score in item.scores.items()
                      if score.value < 1.0 and is_pass_fail_metric(name)]
            if item.item_id not in item_index.index:
                item_index(item.item_id)
                items.append([item.item_id, cut(item.expected), input_summary(item)])
            failed_checks = [[checks(name), reasons(cut(score.reason, 500))]
                             for name, score in failed if not is_field_metric(name)]
            failed_fields = [fields(name.split(".", 1)[1]) for name, _ in failed if is_field_metric(name)]
            records.append([candidate_no, item_index.index[item.item_id], cut(item.prediction),
                            failed_checks, failed_fields])
    flip_rows, flip_payload = _flips(flips_by_candidate, item_index.index, baselines, candidates)
    payload = {
        "candidates": candidates, "checks": checks.values(), "fields": fields.values(),
        "reasons": reasons.values(), "items": items, "records": records, "flips": flip_payload,
    }
    return FailureData(payload, candidates, checks.values(), fields.values(), total, flip_rows, shown=len(records))


def _flips(by_candidate: Mapping[str, Mapping[str, MetricComparison]], item_index: Mapping[str, int],
           baselines: Mapping[str, str], candidates: Sequence[str]) -> tuple[list[FlipRow], list[dict[str, Any]]]:
    rows: list[FlipRow] = []
    payload: list[dict[str, Any]] = []
    for candidate, metrics in by_candidate.items():
        for metric, mc in metrics.items():
            sides = []
            for direction, key in (("pass → fail", "pass_to_fail"), ("fail → pass", "fail_to_pass")):
                ids = [str(i) for i in getattr(mc, key)]
                side = FlipSide(getattr(mc, f"n_{key}"), ids[:FLIP_IDS_SHOWN])
                # pass → fail cases are failures of the candidate; fail → pass ones of the baseline.
                shown_in = candidate if key == "pass_to_fail" else baselines.get(candidate, "")
                known = [item_index[i] for i in ids if i in item_index]
                if known and shown_in in candidates:
                    side.index = len(payload)
                    payload.append({"candidate": candidates.index(shown_in), "items": known,
                                    "label": f"{candidate}: {metric} {direction}"})
                sides.append(side)
            if sides[0].count or sides[1].count:
                rows.append(FlipRow(candidate, metric, sides[0], sides[1]))
    return rows, payload


# Controls and repeated samples: the constrained base beside the fine-tune, and flaky items.
#
# * ``controls`` (candidates with ``constrain: json_schema``): the task metrics of the
#   baseline, the constrained base and every other candidate side by side, and for each
#   other candidate the share of its gain over the baseline that the format constraint
#   alone already gets: did fine-tuning teach the labels, or only the format?
# * ``sampling`` (``generation.samples`` > 1): the settings, and per candidate the items
#   whose samples disagree on a pass/fail check, with each sample's output.

CONTROL_METRICS = ("exact_match", "json_valid", "json_schema")
MAX_OUTPUT_CHARS = 600


@dataclass
class ControlView:
    """One constrained candidate against the baseline and the other candidates."""

    control: str
    baseline: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    findings: list[str] = field(default_factory=list)


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def control_views(run: RunResult) -> list[ControlView]:
    """Return one view per constrained candidate (empty when the run has none)."""
    controls: ControlsSection = run.section("controls") or {}
    means = {c.name: c.metrics() for c in run.candidates if c.status == "ok"}
    baseline = run.baseline
    views = []
    for control in controls:
        if control not in means or baseline not in means:
            continue
        others = [name for name in means if name not in (baseline, control) and name not in controls]
        columns = [baseline, control, *others]
        metrics = [m for m in means[control] if m in CONTROL_METRICS or m.startswith("field")]
        rows = [(m, [_shown(means[c].get(m)) for c in columns]) for m in metrics]
        view = ControlView(control=control, baseline=baseline, columns=columns, rows=rows)
        for other in others:
            for metric in ("exact_match", *[m for m in metrics if m.startswith("field")][:1]):
                base, constrained, tuned = (means[c].get(metric) for c in (baseline, control, other))
                if base is None or constrained is None or tuned is None:
                    continue
                gain = tuned - base
                if gain <= 0:
                    view.findings.append(f"{other} does not beat {baseline} on {metric} "
                                         f"({tuned:.3f} vs {base:.3f}); {control} scores {constrained:.3f}")
                    continue
                share = (constrained - base) / gain
                view.findings.append(
                    f"on {metric}, {other} gains {gain:+.3f} over {baseline}; the format constraint alone "
                    f"({control}) gets {constrained - base:+.3f} of it ({share * 100:.0f}%): "
                    + ("most of the gain is format" if share >= 0.5 else "most of the gain is the labels"))
        views.append(view)
    return views


@dataclass
class FlakyItem:
    """An item whose samples disagree."""

    candidate: str
    item_id: str
    rates: list[tuple[str, str]]
    outputs: list[str]


@dataclass
class SamplingView:
    """The sampling settings and the flaky items."""

    settings: str
    totals: dict[str, int]
    flaky: list[FlakyItem]


def sampling_view(run: RunResult) -> SamplingView | None:
    """Return the repeated-sampling view (None when the run sampled once per item)."""
    section: SamplingSection | None = run.section("sampling")
    if section is None or section.samples <= 1:
        return None
    settings = (f"{section.samples} samples per item at temperature {section.temperature}, seed "
                f"{section.seed}; each check is a per-item pass rate (pass@1), with pass@k and pass^k "
                f"for k = {', '.join(str(k) for k in section.pass_at)}")
    flaky = [FlakyItem(candidate=candidate, item_id=entry.item_id,
                       rates=[(m, f"{v * 100:.0f}%") for m, v in entry.rates.items()],
                       outputs=[cut(o, MAX_OUTPUT_CHARS) for o in entry.outputs])
             for candidate, entries in section.flaky.items() for entry in entries]
    return SamplingView(settings=settings, totals=dict(section.flaky_total), flaky=flaky)
