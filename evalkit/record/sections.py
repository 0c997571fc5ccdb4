"""What every run section's model shares: the base class and the one parser.

A section is what one stage adds to ``run.sections`` (``comparison``, ``bars``,
``benchmarks``, ``judges``...). In memory and on disk a section is its JSON form; its
pydantic model (in its capability's folder, named by :class:`evalkit.record.results.RunSections`) is the schema that
form is checked against when a run is written and read back through when a reader
needs typed values. A leaf: pydantic and :mod:`evalkit.errors` only.

Also in this module:

* The ``resolved_suite`` section: the suite exactly as a run ran it (see :mod:`evalkit.record.run_dir`).
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from evalkit.errors import DataError


class SectionModel(BaseModel):
    """Base of every section model: unknown keys are ignored (a newer evalkit may add some)."""

    model_config = ConfigDict(extra="ignore")


Parsed = TypeVar("Parsed")

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(shape: Any) -> TypeAdapter[Any]:
    """Return the (cached) pydantic adapter of a type or type expression such as ``dict[str, X]``."""
    key = repr(shape)  # type expressions like dict[str, X] are equal but not always the same object
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(shape)
    return _ADAPTERS[key]


DAMAGED = "the file is damaged or was written by another evalkit version"


def parse_section(shape: type[Parsed] | Any, data: Any, where: str, hint: str = DAMAGED) -> Parsed:
    """Validate ``data`` as ``shape`` (a section model, or a type expression of them).

    Args:
        shape: the type to read, e.g. ``dict[str, dict[str, BenchmarkScore]]``.
        data: the section's JSON form.
        where: what the reader names on failure, e.g. ``summary.json sections.benchmarks``.
        hint: what to do about it, ending the message.

    Raises:
        DataError: naming ``where``, the first wrong field's path and what is wrong with it.
    """
    try:
        return cast(Parsed, adapter(shape).validate_python(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(section)"
        raise DataError(f"{where}: field '{field}': {error['msg'].lower()}; {hint}") from None


# The ``resolved_suite`` section: the suite exactly as a run ran it (see :mod:`evalkit.record.run_dir`).
#
# Written by :func:`evalkit.api.run_suite` into every run (``summary.json`` and the
# store), read by ``evalkit run --from RUN`` to run the same suite again.

class CandidateRuntime(SectionModel):
    """Where and how one candidate generated: its backend, device and resolved dtype.

    ``device`` and ``dtype`` are None for a backend that decides them itself (an
    external server, the mock backend, a plugin's backend).
    """

    backend: str
    device: str | None = None
    dtype: str | None = None


class ResolvedSuiteSection(SectionModel):
    """The suite as evalkit ran it: every value after defaults, ``--set`` and ``--limit``."""

    suite_file: str
    """The suite file, absolute: relative paths in ``config`` are resolved against its directory."""
    config: dict[str, Any]
    """The validated suite, every default filled in (as a suite file would write it)."""
    overrides: list[str] = Field(default_factory=list)
    """The ``--set KEY=VALUE`` options applied (already part of ``config``)."""
    candidates: list[str] | None = None
    """The ``--candidate`` selection; None: every candidate."""
    allow_missing: list[str] = Field(default_factory=list)
    """The ``--allow-missing`` candidates."""
    limit: int | None = None
    """``--limit N``, when given (its cuts are already part of ``config``)."""
    paths: dict[str, str] = Field(default_factory=dict)
    """The suite's paths resolved: ``dataset.path``, ``candidates.NAME.adapter``, ``output_dir`` ..."""
    files: dict[str, str] = Field(default_factory=dict)
    """SHA-256 of every file the suite names (data, schemas, rubrics, training configs), by the name written."""
    runtime: dict[str, CandidateRuntime] = Field(default_factory=dict)
    """Per candidate: backend, device and dtype as resolved on this machine."""
    seeds: dict[str, int] = Field(default_factory=dict)
    """Every seed the run used (``generation``: the sampling seed)."""
    versions: dict[str, str | None] = Field(default_factory=dict)
    """evalkit, Python and the key libraries (torch, transformers, peft, vllm, lm-eval); None: not installed."""
