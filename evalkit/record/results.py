"""The typed results every stage passes on, per item, candidate and run; their sections and written records.

:class:`ItemResult` is one candidate's answer to one item with its scores, :class:`CandidateResult`
everything measured for one candidate, :class:`RunResult` one run of a suite; :func:`run_frame`
gives a run's per-item results as a table.

Also here:

* The typed form of a run's sections, one schema for everything the stages add (:class:`RunSections`,
  :func:`check_sections`, :func:`read_section`).
* The written form of a run, one record type per part, used both ways (:class:`SummaryRecord`,
  :class:`CandidateIdentity`, :func:`parse_record`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from evalkit.bars.spec import BarResult
from evalkit.benchmarks.spec import BenchmarksSection
from evalkit.checks import Score
from evalkit.comparison.result import Comparison
from evalkit.contamination.ngrams import ContaminationSection
from evalkit.errors import DataError
from evalkit.judges.section import JudgesSection
from evalkit.parity.section import ParitySection
from evalkit.record.run_facts import (
    ControlsSection,
    ExecutorSection,
    FleetSection,
    LimitSection,
    MergeAgreementSection,
    MetricKindsSection,
    SamplingSection,
    SlicesSection,
    SweepSection,
    UsageSection,
)
from evalkit.record.sections import DAMAGED, ResolvedSuiteSection, SectionModel, adapter, parse_section
from evalkit.train.config import ManifestsSection

# Names other modules import from here though they are defined elsewhere.
__all__ = ["parse_section"]


# The typed form of a run's sections: one schema for everything the stages add.
#
# A run's ``sections`` hold what each stage found, by name, in their JSON form (that is
# what ``summary.json`` and the store keep). :class:`RunSections` is their schema: each
# known section's model (``comparison``, ``bars``, ``benchmarks``, ``judges``,
# ``manifests``, ``parity``, ``contamination`` and the run's smaller facts), and any further section a
# registered stage adds, kept as its JSON. :func:`check_sections` validates the lot when
# a run is written (a stage that wrote a shape its schema does not describe is a bug:
# the run stops instead of writing it) and when one is read back (a damaged file is
# refused naming the field); the readers below give the typed values.

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


# The written form of a run: one record type per part, used both ways.
#
# ``summary.json`` is a :class:`SummaryRecord` (the store's summaries have the same shape);
# each line of ``results.jsonl`` is an :class:`ItemResult`. This module
# writes runs through these models and reads them back through :func:`parse_record`, so the
# run directory, the store, ``--json`` and the report agree on one schema, and a damaged
# file is refused with the field that is wrong instead of a ``KeyError``.
#
# Unknown keys are ignored when reading (a newer evalkit may add some), except in an
# identity, where an unknown key means the run was made by a version whose identity this
# one cannot compare.

class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class CandidateIdentity:
    """Exactly what a candidate was: model, adapter and prompt, by content hash.

    Read back strictly: a key this version does not know means another version made the
    run, whose identities this one cannot compare.

    Attributes:
        model_source: the ``model:`` string of the suite.
        model_fingerprint: SHA-256 of the base model's config and weights.
        adapter: the adapter directory, if any.
        adapter_hash: SHA-256 of the adapter's config and weights, if any.
        backend: the backend that generated.
        prompt_hash: SHA-256 of the prompt templates and few-shot examples.
        engine: the vLLM engine options set (tensor/pipeline parallel sizes, quantization,
            ...) as canonical JSON; "" when none (see :mod:`evalkit.models.options`).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    model_source: str
    model_fingerprint: str
    adapter: str | None
    adapter_hash: str | None
    backend: str
    prompt_hash: str
    engine: str = ""


class CandidateRecord(_Record):
    """A candidate in ``summary.json``: status, identity, item count, time and metric means."""

    name: str
    status: Literal["ok", "skipped"] = "ok"
    message: str = ""
    identity: CandidateIdentity | None = None
    items: int = 0
    seconds: float = 0.0
    metrics: dict[str, float] = {}


class SummaryRecord(_Record):
    """``summary.json``: the run's header, its candidates and the stages' sections.

    ``sections`` stay their JSON here; :func:`parse_record` checks them against
    :class:`RunSections`, whose readers give the typed values.
    """

    run_id: str
    suite: str
    suite_path: str = ""
    baseline: str
    started_at: str = ""
    finished_at: str = ""
    dataset_hash: str = ""
    evalkit_version: str = ""
    command: str = ""
    warnings: list[str] = []
    candidates: list[CandidateRecord]
    sections: dict[str, Any] = {}


def summary_json(record: SummaryRecord, sections: Mapping[str, Any]) -> dict[str, Any]:
    """Return a summary's JSON-ready form, ``sections`` last, as the stages wrote them once checked.

    The per-item maps some sections carry (:func:`summary_sections`) are left out, so a
    summary's size does not grow with the items.

    Raises:
        RuntimeError: a section does not match its schema (:func:`written_sections`).
    """
    return {**record.model_dump(exclude={"sections"}), "sections": summary_sections(written_sections(sections))}


# Section parts keyed by item: the run in memory and the store keep them (a bar on a slice
# reads the item labels, the usage meter each item's tokens); summary.json, --json and the
# store's summaries hold the aggregates only. A run read back from its directory has them
# empty, as it has no per-item benchmark values: its items are in results.jsonl.
_PER_ITEM_PARTS = {"slices": "labels"}       # section -> its per-item key
_PER_ITEM_PER_CANDIDATE = {"usage": "per_item"}  # section -> candidate -> its per-item key


FLIP_IDS_KEPT = 100
"""Flipped item ids a summary keeps per metric and direction; the totals say how many there are."""


def summary_sections(sections: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``sections`` as a summary holds them: without their per-item maps (a shallow copy).

    The comparison's flipped item ids are cut to the first :data:`FLIP_IDS_KEPT` per
    metric, with ``pass_to_fail_total`` / ``fail_to_pass_total`` saying how many flipped.
    """
    bounded = dict(sections)
    comparison = bounded.get("comparison")
    if isinstance(comparison, Mapping) and isinstance(comparison.get("candidates"), Mapping):
        bounded["comparison"] = {**comparison, "candidates": {
            name: {**entry, "metrics": {metric: _cut_flips(values) for metric, values in entry["metrics"].items()}}
            if isinstance(entry, Mapping) and isinstance(entry.get("metrics"), Mapping) else entry
            for name, entry in comparison["candidates"].items()}}
    for name, key in _PER_ITEM_PARTS.items():
        section = bounded.get(name)
        if isinstance(section, Mapping) and key in section:
            bounded[name] = {k: v for k, v in section.items() if k != key}
    for name, key in _PER_ITEM_PER_CANDIDATE.items():
        section = bounded.get(name)
        if isinstance(section, Mapping):
            bounded[name] = {candidate: {k: v for k, v in entry.items() if k != key}
                             if isinstance(entry, Mapping) else entry for candidate, entry in section.items()}
    return bounded


def written_sections(sections: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a run's sections for writing, once checked against :class:`RunSections`.

    Raises:
        RuntimeError: a stage wrote a shape its section's schema does not describe; that
            is evalkit's bug, so the run stops (exit 3) instead of writing what no reader
            could read back.
    """
    try:
        check_sections(sections, "run", hint="please report it with the suite that made the run")
    except DataError as exc:
        raise RuntimeError(f"internal error: a run section does not match its schema: {exc}") from None
    return sections


Record = TypeVar("Record")


def parse_record(model: type[Record], data: Any, where: str) -> Record:
    """Validate ``data`` as ``model`` (a record above, or :class:`CandidateIdentity`).

    Raises:
        DataError: naming ``where``, the first wrong field's path and what is wrong with it.
    """
    if not isinstance(data, Mapping):
        raise DataError(f"{where}: expected a JSON object, found {type(data).__name__}; "
                        "the file is damaged, re-run the suite")
    try:
        parsed = cast(Record, _adapter(model).validate_python(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(record)"
        if model is CandidateIdentity or field.startswith("identity") or ".identity." in f".{field}.":
            hint = "the run was made by another evalkit version; read it with that version"
        else:
            hint = "the file is damaged, re-run the suite"
        raise DataError(f"{where}: field '{field}': {error['msg'].lower()}; {hint}") from None
    if isinstance(parsed, SummaryRecord):
        check_sections(parsed.sections, where)  # each stage's section against its schema
    return parsed


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(model: type[Any]) -> TypeAdapter[Any]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def _cut_flips(metric: Any) -> Any:
    """Return one metric comparison's JSON with its flipped ids cut to the first ``FLIP_IDS_KEPT``."""
    if not isinstance(metric, Mapping):
        return metric
    cut = dict(metric)
    for key in ("pass_to_fail", "fail_to_pass"):
        ids = metric.get(key)
        if isinstance(ids, list) and len(ids) > FLIP_IDS_KEPT:
            cut[key] = ids[:FLIP_IDS_KEPT]
            if metric.get(f"{key}_total") is None:
                cut[f"{key}_total"] = len(ids)
    return cut


if TYPE_CHECKING:
    import pandas as pd

CandidateStatus = Literal["ok", "skipped"]


@dataclass(kw_only=True)
class ItemResult:
    """One candidate's answer to one item, with every metric's score on it.

    The one type of an item, in memory and on disk: a line of ``results.jsonl`` is this
    item's JSON (``fields`` written as ``input``) plus the ``candidate`` it belongs to. A
    plain dataclass, so the runner builds a million of them at dataclass cost; pydantic
    validates it (:func:`item_line` / :func:`parse_item_line`) only where a file is read.

    Attributes:
        item_id: the item's id in the dataset.
        fields: the item's fields as read.
        prompt: the exact prompt text the model saw.
        expected: the reference answer.
        prediction: what the model produced.
        scores: metric name -> score (checks, JSON fields, judge criteria).
    """

    # an id written as a number reads back as text; keys a newer evalkit adds are ignored
    __pydantic_config__ = ConfigDict(coerce_numbers_to_str=True, populate_by_name=True, extra="ignore")

    item_id: str
    fields: Annotated[dict[str, Any], Field(alias="input")] = field(default_factory=dict)
    prompt: str = ""
    expected: str
    prediction: str
    scores: dict[str, Score] = field(default_factory=dict)


_ITEM = TypeAdapter(ItemResult)


def item_line(item: ItemResult, candidate: str) -> dict[str, Any]:
    """Return the JSON-ready line ``results.jsonl`` holds for ``candidate``'s ``item``."""
    return {"candidate": candidate, **_ITEM.dump_python(item, by_alias=True)}


def parse_item_line(data: Any, where: str) -> tuple[str, ItemResult]:
    """Return (candidate, item) from one line of ``results.jsonl``.

    Raises:
        DataError: naming ``where`` and the first wrong field.
    """
    candidate = data.get("candidate") if isinstance(data, Mapping) else None
    if isinstance(data, Mapping) and not isinstance(candidate, str):
        raise DataError(f"{where}: field 'candidate': expected the candidate's name; "
                        "the file is damaged, re-run the suite")
    return str(candidate), parse_record(ItemResult, data, where)


@dataclass
class CandidateResult:
    """Everything measured for one candidate.

    Attributes:
        name: the candidate's name.
        status: ``ok`` or ``skipped`` (then ``message`` says why and how to fix it).
        message: the skip reason, or notes such as warnings.
        identity: what exactly was evaluated (None when skipped before resolving).
        items: per-item results of the task checks and judges.
        item_values: further per-item metrics not tied to task items (benchmarks):
            metric -> item id -> value.
        seconds: wall time spent generating.
    """

    name: str
    status: CandidateStatus = "ok"
    message: str = ""
    identity: CandidateIdentity | None = None
    items: list[ItemResult] = field(default_factory=list)
    item_values: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def values(self, metric: str) -> dict[str, float]:
        """Return item id -> value for one metric (empty when not measured)."""
        if metric in self.item_values:
            return dict(self.item_values[metric])
        return {i.item_id: i.scores[metric].value for i in self.items if metric in i.scores}

    def metric_names(self) -> list[str]:
        """Return every metric measured for this candidate, in first-seen order."""
        names: dict[str, None] = {}
        for item in self.items:
            names.update(dict.fromkeys(item.scores))
        names.update(dict.fromkeys(self.item_values))
        return list(names)

    def metrics(self) -> dict[str, float]:
        """Return metric -> mean over items, in :meth:`metric_names` order (one pass over the items)."""
        totals: dict[str, list[float]] = {}  # metric -> [sum, count]
        for item in self.items:
            for name, score in item.scores.items():
                entry = totals.get(name)
                if entry is None:
                    totals[name] = [score.value, 1.0]
                else:
                    entry[0] += score.value
                    entry[1] += 1.0
        for name, per_item in self.item_values.items():  # per-item values win, as in values()
            totals[name] = [sum(per_item.values()), float(len(per_item))]
        return {name: total / count for name, (total, count) in totals.items() if count}


@dataclass
class RunResult:
    """One run of a suite.

    Attributes:
        run_id: unique id (the run directory's name).
        suite_name: the suite's name.
        suite_path: the suite file.
        baseline: the baseline candidate's name.
        candidates: per-candidate results, in suite order.
        started_at / finished_at: ISO timestamps (UTC).
        dataset_hash: SHA-256 of the dataset file.
        evalkit_version: the version that made the run.
        command: the command line, when run from the CLI.
        run_dir: where the run's files were written (None until written).
        sections: what each further stage found (benchmarks, judges, comparison), by name, in its
            JSON form; :meth:`section` reads one typed.
        warnings: things a reader must know (leakage, uncalibrated judges...).
    """

    run_id: str
    suite_name: str
    suite_path: str
    baseline: str
    candidates: list[CandidateResult]
    started_at: str
    finished_at: str = ""
    dataset_hash: str = ""
    evalkit_version: str = ""
    command: str = ""
    run_dir: Path | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def candidate(self, name: str) -> CandidateResult:
        """Return the named candidate's result.

        Raises:
            KeyError: no candidate of that name.
        """
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def section(self, name: SectionName) -> Any:
        """Return the run's section ``name``, typed by its schema (:func:`read_section`); None when absent.

        Raises:
            DataError: the stored section does not have its schema's shape (naming the run and field).
        """
        return read_section(self.sections, name, f"run {self.run_id}")

    def set_section(self, name: SectionName, value: Any, *, only_set: bool = False) -> None:
        """Store the section ``name``: a stage's typed value (or its JSON), checked and kept as JSON.

        With ``only_set``, only the fields that were set are kept (a section whose entries omit
        what they did not measure, :func:`evalkit.record.results.section_json`).

        Raises:
            RuntimeError: ``value`` does not match the section's schema; that is evalkit's
                bug, so the run stops (exit 3) instead of keeping what no reader could read.
        """
        self.sections[name] = _checked(functools.partial(section_json, only_set=only_set), name, value)

    def set_section_entry(self, name: KeyedSectionName, key: str, value: Any, *, only_set: bool = False) -> None:
        """Store ``key``'s entry (a candidate's, a metric's, a judge's) of the keyed section ``name``.

        ``only_set`` as in :meth:`set_section`.

        Raises:
            RuntimeError: as :meth:`set_section`.
        """
        entry = _checked(functools.partial(entry_json, only_set=only_set), name, value)
        self.sections.setdefault(name, {})[key] = entry

    def to_pandas(self, reasons: bool = False) -> pd.DataFrame:
        """Return items × metrics per candidate as a DataFrame (see :func:`run_frame`).

        Args:
            reasons: add a ``<metric>.reason`` column beside each check and judge metric.
        """
        return run_frame(self, reasons=reasons)

    def summary(self) -> dict[str, Any]:
        """Return the JSON-ready summary written to ``summary.json`` (a :class:`SummaryRecord`)."""
        record = SummaryRecord(
            run_id=self.run_id, suite=self.suite_name, suite_path=self.suite_path, baseline=self.baseline,
            started_at=self.started_at, finished_at=self.finished_at, dataset_hash=self.dataset_hash,
            evalkit_version=self.evalkit_version, command=self.command, warnings=self.warnings,
            candidates=[
                CandidateRecord(
                    name=c.name, status=c.status, message=c.message,
                    identity=c.identity,
                    items=len(c.items), seconds=round(c.seconds, 3), metrics=c.metrics(),
                )
                for c in self.candidates
            ],
        )
        return summary_json(record, self.sections)

    @classmethod
    def from_summary(cls, record: SummaryRecord, run_dir: Path | None = None) -> RunResult:
        """Return the run a summary describes, its candidates without items (they are read separately)."""
        return cls(
            run_id=record.run_id, suite_name=record.suite, suite_path=record.suite_path, baseline=record.baseline,
            candidates=[
                CandidateResult(name=c.name, status=c.status, message=c.message, seconds=c.seconds,
                                identity=c.identity)
                for c in record.candidates
            ],
            started_at=record.started_at, finished_at=record.finished_at, dataset_hash=record.dataset_hash,
            evalkit_version=record.evalkit_version, command=record.command, run_dir=run_dir,
            sections=dict(record.sections), warnings=list(record.warnings),
        )


def _checked(to_json: Callable[[Any, Any], Any], name: str, value: Any) -> Any:
    try:
        return to_json(name, value)
    except DataError as exc:
        raise RuntimeError(f"internal error: a stage wrote section '{name}' in a shape its schema does not "
                           f"describe: {exc}") from None


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
