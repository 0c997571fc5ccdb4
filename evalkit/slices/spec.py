"""The suite's ``slices:`` section and the sliced-metric names bars use.

A slice splits the items by one field, so every metric can be compared per group::

    slices:
      - output.category                 # a field; a JSON string field is read by its key
      - field: input                    # a length bucket derived from a field
        name: input_length
        length_bins: [0, 80, 160]       # characters: <80, 80-159, >=160

A bar names one slice of a metric as ``exact_match[category=billing]``. This module
imports nothing heavy: the suite config and :mod:`evalkit.bars.evaluate` import it;
:mod:`evalkit.slices.compare` does the comparison.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalkit.errors import ConfigError

MISSING = "(missing)"
"""The slice label of an item that lacks the field."""
_SLICED_METRIC = re.compile(r"^(?P<metric>[^\[\]]+)\[(?P<slice>[A-Za-z_][\w.\-]*)=(?P<value>[^\[\]]+)\]$")


class SliceSpec(BaseModel):
    """One way of splitting the items into slices.

    Written as a field path (``category``, ``output.category``) or as a mapping with
    ``field`` and optionally ``name`` and ``length_bins``.
    """

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1)
    """The item field; dots go into nested objects, and into a field holding a JSON string."""
    name: str = ""
    """The slice's name in tables and bars; default: the last part of ``field``."""
    length_bins: list[int] | None = Field(default=None, max_length=64)
    """Bucket the field's length in characters at these ascending edges instead of using its value."""

    @model_validator(mode="before")
    @classmethod
    def _from_entry(cls, entry: Any) -> Any:
        if isinstance(entry, str):
            return {"field": entry}
        return entry

    @field_validator("length_bins")
    @classmethod
    def _ascending(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(b >= a for a, b in zip(value[1:], value, strict=False))):
            raise ValueError("length_bins must be ascending character counts, e.g. [0, 80, 160]")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> SliceSpec:
        if not self.name:
            self.name = self.field.rsplit(".", 1)[-1]
        if not re.fullmatch(r"[A-Za-z_][\w.\-]*", self.name):
            raise ValueError(f"slice name '{self.name}': use letters, digits, '_', '-', '.'; set `name:`")
        return self

    def label(self, fields: Mapping[str, Any]) -> str:
        """Return the slice an item with these fields belongs to."""
        value = field_value(fields, self.field)
        if value is None:
            return MISSING
        if self.length_bins is None:
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        length = len(value if isinstance(value, str) else json.dumps(value))
        edges = self.length_bins
        if length < edges[0]:
            return f"<{edges[0]}"
        for low, high in itertools.pairwise(edges):
            if low <= length < high:
                return f"{low}-{high - 1}"
        return f">={edges[-1]}"


def field_value(fields: Mapping[str, Any], path: str) -> Any:
    """Return the value at a dotted path, reading JSON text fields as objects (None when absent)."""
    current: Any = fields
    for part in path.split("."):
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                return None
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def check_slice_fields(specs: Sequence[SliceSpec], items: Sequence[Any], source: str, dataset: str) -> None:
    """Refuse a slice whose field no item has: a misspelt field would put every item in "(missing)".

    Args:
        specs: the suite's slices.
        items: the loaded items (anything with ``fields``).
        source: the suite file, for the message.
        dataset: the dataset file, for the message.

    Raises:
        ConfigError: ``source: slices.N: field 'x' is in no item of DATASET; ...``.
    """
    for index, spec in enumerate(specs):
        if any(field_value(item.fields, spec.field) is not None for item in items):
            continue
        present = sorted({name for item in items[:100] for name in item.fields})
        shown = ", ".join(present[:20]) + (", ..." if len(present) > 20 else "")
        raise ConfigError(f"{source}: slices.{index}: field '{spec.field}' is in no item of {dataset}; "
                         f"check its spelling (the items have: {shown or 'no fields'})")


def split_sliced_metric(metric: str) -> tuple[str, str, str] | None:
    """Return (metric, slice, value) for ``exact_match[category=billing]``, else None."""
    match = _SLICED_METRIC.match(metric)
    if match is None:
        return None
    return match["metric"].strip(), match["slice"], match["value"].strip()
