"""Controls and repeated samples: the constrained base beside the fine-tune, and flaky items.

* ``controls`` (candidates with ``constrain: json_schema``): the task metrics of the
  baseline, the constrained base and every other candidate side by side, and for each
  other candidate the share of its gain over the baseline that the format constraint
  alone already gets: did fine-tuning teach the labels, or only the format?
* ``sampling`` (``generation.samples`` > 1): the settings, and per candidate the items
  whose samples disagree on a pass/fail check, with each sample's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.report.failures import cut
from evalkit.results import RunResult

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
    controls = run.sections.get("controls") or {}
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
    section: Mapping[str, Any] = run.sections.get("sampling") or {}
    if int(section.get("samples", 1)) <= 1:
        return None
    settings = (f"{section['samples']} samples per item at temperature {section.get('temperature')}, seed "
                f"{section.get('seed')}; each check is a per-item pass rate (pass@1), with pass@k and pass^k "
                f"for k = {', '.join(str(k) for k in section.get('pass_at') or [])}")
    flaky = [FlakyItem(candidate=str(candidate), item_id=str(entry.get("item_id")),
                       rates=[(m, f"{float(v) * 100:.0f}%") for m, v in (entry.get("rates") or {}).items()],
                       outputs=[cut(str(o), MAX_OUTPUT_CHARS) for o in entry.get("outputs") or []])
             for candidate, entries in (section.get("flaky") or {}).items() for entry in entries]
    totals = {str(c): int(n) for c, n in (section.get("flaky_total") or {}).items()}
    return SamplingView(settings=settings, totals=totals, flaky=flaky)
