"""The typed form of a run's sections: one schema for everything the stages add.

A run's ``sections`` hold what each stage found, by name, in their JSON form (that is
what ``summary.json`` and the store keep). :class:`RunSections` is their schema: each
known section's model (``comparison``, ``bars``, ``benchmarks``, ``judges``,
``manifests``, ``parity``, ``contamination`` and the run's smaller facts), and any further section a
registered stage adds, kept as its JSON. :func:`check_sections` validates the lot when
a run is written (a stage that wrote a shape its schema does not describe is a bug:
the run stops instead of writing it) and when one is read back (a damaged file is
refused naming the field); the readers below give the typed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import ConfigDict

from evalkit.bars.result import BarResult
from evalkit.benchmarks.section import BenchmarksSection
from evalkit.comparison.result import Comparison
from evalkit.contamination.section import ContaminationSection
from evalkit.judges.section import JudgesSection
from evalkit.parity.section import ParitySection
from evalkit.record.run_facts import (
    ControlsSection,
    ExecutorSection,
    FleetSection,
    LimitSection,
    MetricKindsSection,
    SamplingSection,
    UsageSection,
)
from evalkit.record.sections import DAMAGED, ResolvedSuiteSection, SectionModel, adapter, parse_section
from evalkit.record.tradeoffs import MergeAgreementSection, SlicesSection, SweepSection
from evalkit.train.manifests import ManifestsSection

__all__ = ["KeyedSectionName", "RunSections", "SectionName", "bars_section", "check_sections", "compared_baseline",
           "comparison_section", "entry_json", "parse_section", "read_section", "section_json", "sweep_pick"]


class RunSections(SectionModel):
    """Every section a run can hold, typed; unknown ones (a registered stage's) kept as JSON."""

    model_config = ConfigDict(extra="allow")

    # what the run measured, in stage order
    benchmarks: BenchmarksSection | None = None
    manifests: ManifestsSection | None = None
    judges: JudgesSection | None = None
    parity: ParitySection | None = None
    merge_agreement: MergeAgreementSection | None = None
    slices: SlicesSection | None = None
    sweep: SweepSection | None = None
    fleet: FleetSection | None = None
    contamination: ContaminationSection | None = None
    comparison: Comparison | None = None
    bars: list[BarResult] | None = None
    # how it was run
    usage: UsageSection | None = None
    sampling: SamplingSection | None = None
    controls: ControlsSection | None = None
    metric_kinds: MetricKindsSection | None = None
    executor: ExecutorSection | None = None
    limit: LimitSection | None = None
    resolved_suite: ResolvedSuiteSection | None = None


SectionName = Literal[
    "benchmarks", "manifests", "judges", "parity", "merge_agreement", "slices", "sweep", "fleet", "contamination",
    "comparison", "bars", "usage", "sampling", "controls", "metric_kinds", "executor", "limit", "resolved_suite",
]
"""The built-in sections, by the name a run stores them under (:class:`RunSections`' fields)."""


def read_section(sections: Mapping[str, Any], name: SectionName, where: str = "run") -> Any:
    """Return the section ``name`` of a run's ``sections``, typed by its field of :class:`RunSections`.

    The one reader of a stored section: every view, report and command reads a section
    through it (or :meth:`evalkit.record.results.RunResult.section`), so a section's
    schema is written once, in :class:`RunSections`. Only the section asked for is
    validated: a run's slices hold a label per item, which other readers should not pay for.

    Args:
        sections: the run's sections in their JSON form.
        name: the section.
        where: the run, for the message (``run 20261207-044726``).

    Returns:
        The typed section, or None when the run has none.

    Raises:
        DataError: naming ``where``, the section and its first wrong field.
    """
    stored = sections.get(name)
    if stored is None:
        return None
    return parse_section(RunSections.model_fields[name].annotation, stored, f"{where}: sections.{name}")


_WRITER_BUG = "please report it with the suite that made the run"

KeyedSectionName = Literal["benchmarks", "manifests", "judges", "merge_agreement", "fleet", "usage", "controls",
                          "metric_kinds"]
"""The sections that map a key (a candidate, a metric, a judge entry) to an entry, written one entry at a time."""


def section_json(name: SectionName, value: Any, *, only_set: bool = False) -> Any:
    """Return the JSON form (what ``run.sections`` holds) of section ``name``, checked against its schema.

    The one writer of a section: stages store theirs through
    :meth:`evalkit.record.results.RunResult.set_section`, which calls this.

    Args:
        name: the section.
        value: its typed value (or its JSON form).
        only_set: write only the fields that were set, so a section read and written back is
            what was stored (the two-run report); a stage writes every field.

    Raises:
        DataError: ``value`` does not have the section's shape, naming the field.
    """
    return _checked_json(RunSections.model_fields[name].annotation, value, f"sections.{name}", only_set)


def entry_json(name: KeyedSectionName, value: Any, *, only_set: bool = False) -> Any:
    """Return the JSON form of one entry of the keyed section ``name``, checked (``only_set``: see section_json).

    Raises:
        DataError: ``value`` does not have the entry's shape, naming the field.
    """
    mapping = next(arg for arg in get_args(RunSections.model_fields[name].annotation) if arg is not type(None))
    return _checked_json(get_args(mapping)[1], value, f"sections.{name} entry", only_set)


def _checked_json(shape: Any, value: Any, where: str, only_set: bool) -> Any:
    """Validate ``value`` as ``shape`` (a typed value passes as it is) and return its JSON form."""
    typed: Any = parse_section(shape, value, where, _WRITER_BUG)
    return adapter(shape).dump_python(typed, mode="json", exclude_unset=only_set)


def check_sections(sections: Mapping[str, Any], where: str, hint: str = DAMAGED) -> None:
    """Validate a run's sections against :class:`RunSections`.

    Raises:
        DataError: naming ``where``, the section and the field that is wrong, then ``hint``.
    """
    parse_section(RunSections, dict(sections), f"{where} sections", hint)


def comparison_section(sections: Mapping[str, Any], where: str = "run") -> Comparison | None:
    """Return the run's comparison, typed; None when the run has none."""
    comparison: Comparison | None = read_section(sections, "comparison", where)
    return comparison


def compared_baseline(sections: Mapping[str, Any], default: str, where: str = "run") -> str:
    """Return the candidate the run compared with: its comparison's baseline, else ``default``.

    ``default`` is the run's own baseline; a comparison of two runs names none (each
    candidate then has its own, in its entry).
    """
    comparison = comparison_section(sections, where)
    return (comparison.baseline if comparison is not None else "") or default


def bars_section(sections: Mapping[str, Any], where: str = "run") -> list[BarResult]:
    """Return the run's checked bars as stored, typed; empty when the run has none."""
    bars: list[BarResult] | None = read_section(sections, "bars", where)
    return bars or []


def sweep_pick(sections: Mapping[str, Any], name: str, where: str = "run") -> tuple[bool, str | None, str]:
    """Return (is ``name`` the run's sweep, the candidate it picked or None, why) from a run's sections."""
    sweep: SweepSection | None = read_section(sections, "sweep", where)
    if sweep is None or sweep.name != name:
        return False, None, ""
    return True, sweep.pick, sweep.reason
