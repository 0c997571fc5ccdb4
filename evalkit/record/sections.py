"""What every run section's model shares: the base class and the one parser.

A section is what one stage adds to ``run.sections`` (``comparison``, ``bars``,
``benchmarks``, ``judges``...). In memory and on disk a section is its JSON form; its
pydantic model (one module per family in :mod:`evalkit.sections`) is the schema that
form is checked against when a run is written and read back through when a reader
needs typed values. A leaf: pydantic and :mod:`evalkit.errors` only.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from evalkit.errors import DataError

__all__ = ["SectionModel", "parse_section"]


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
