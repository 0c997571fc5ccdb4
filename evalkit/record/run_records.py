"""The written form of a run: one record type per part, used both ways.

``summary.json`` is a :class:`SummaryRecord` (the store's summaries have the same shape);
each line of ``results.jsonl`` is an :class:`evalkit.record.results.ItemResult`. :mod:`evalkit.record.results`
writes runs through these models and reads them back through :func:`parse_record`, so the
run directory, the store, ``--json`` and the report agree on one schema, and a damaged
file is refused with the field that is wrong instead of a ``KeyError``.

Unknown keys are ignored when reading (a newer evalkit may add some), except in an
identity, where an unknown key means the run was made by a version whose identity this
one cannot compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from evalkit.errors import DataError
from evalkit.record.run_sections import check_sections

__all__ = [
    "FLIP_IDS_KEPT", "CandidateIdentity", "CandidateRecord", "SummaryRecord",
    "parse_record", "summary_json", "summary_sections", "written_sections",
]


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
    :class:`evalkit.sections.RunSections`, whose readers give the typed values.
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
    """Return a run's sections for writing, once checked against :class:`evalkit.sections.RunSections`.

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
