"""The typed results every stage passes on: per item, per candidate, per run."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from evalkit.checks import Score
from evalkit.errors import DataError
from evalkit.record.run_records import CandidateIdentity as CandidateIdentity  # re-exported: where importers find it
from evalkit.record.run_records import CandidateRecord, SummaryRecord, parse_record, summary_json
from evalkit.record.run_sections import KeyedSectionName, SectionName, entry_json, read_section, section_json

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
        what they did not measure, :func:`evalkit.record.run_sections.section_json`).

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
