"""Controls and repeated samples: the constrained base beside the fine-tune, and flaky items.

* ``controls`` (candidates with ``constrain: json_schema``): the task metrics of the
  baseline, the constrained base and every other candidate side by side, and for each
  other candidate the share of its gain over the baseline that the format constraint
  alone already gets: did fine-tuning teach the labels, or only the format?
* ``sampling`` (``generation.samples`` > 1): the settings, and per candidate the items
  whose samples disagree on a pass/fail check, with each sample's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalkit.record.results import RunResult
from evalkit.record.run_facts import CONTROLS, SAMPLING, ControlsSection, SamplingSection
from evalkit.record.sections import parse_section
from evalkit.report.failures import cut

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
    controls: ControlsSection = parse_section(ControlsSection, run.sections.get(CONTROLS) or {},
                                              f"run {run.run_id}: sections.{CONTROLS}")
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
    section: SamplingSection = parse_section(SamplingSection, run.sections.get(SAMPLING) or {},
                                             f"run {run.run_id}: sections.{SAMPLING}")
    if section.samples <= 1:
        return None
    settings = (f"{section.samples} samples per item at temperature {section.temperature}, seed "
                f"{section.seed}; each check is a per-item pass rate (pass@1), with pass@k and pass^k "
                f"for k = {', '.join(str(k) for k in section.pass_at)}")
    flaky = [FlakyItem(candidate=candidate, item_id=entry.item_id,
                       rates=[(m, f"{v * 100:.0f}%") for m, v in entry.rates.items()],
                       outputs=[cut(o, MAX_OUTPUT_CHARS) for o in entry.outputs])
             for candidate, entries in section.flaky.items() for entry in entries]
    return SamplingView(settings=settings, totals=dict(section.flaky_total), flaky=flaky)
