"""Load evaluation items from JSONL or CSV files, with errors that name the line."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.files.yaml_source import json_objects, refuse_non_regular_file


@dataclass(frozen=True)
class Item:
    """One evaluation item.

    Attributes:
        id: stable id (the ``id_field`` value, or the 1-based line number).
        fields: the item's fields as read from the file.
        line: the line of the file the item came from.
    """

    id: str
    fields: dict[str, Any] = field(hash=False)
    line: int = 0


def load_items(path: Path, id_field: str | None = None, limit: int | None = None) -> list[Item]:
    """Read items from a ``.jsonl`` or ``.csv`` file.

    Args:
        path: the data file.
        id_field: field that holds each item's id; default the line number.
        limit: read at most this many items.

    Raises:
        DataError: the file is missing, a line is not a JSON object, an id is missing
            or repeated; the message names the file and line.
    """
    refuse_non_regular_file(path, "dataset file")
    if not path.is_file():
        raise DataError(f"{path}: dataset file not found; check dataset.path in the suite")
    try:
        rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (undecodable byte at offset {exc.start}); "
                        "save the dataset as UTF-8 JSONL or CSV") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, fields in rows:
        if id_field is None:
            item_id = str(line)
        else:
            if id_field not in fields:
                raise DataError(
                    f"{path}:{line}: id field '{id_field}' is missing; add it or unset dataset.id_field"
                )
            item_id = str(fields[id_field])
        if item_id in seen:
            raise DataError(
                f"{path}:{line}: id '{item_id}' repeats line {seen[item_id]}; ids must be unique"
            )
        seen[item_id] = line
        items.append(Item(id=item_id, fields=fields, line=line))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise DataError(f"{path}: no items; the dataset file is empty")
    return items


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(json_objects(path))


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows: list[tuple[int, dict[str, Any]]] = []
        for record in reader:
            if None in record:
                raise DataError(f"{path}:{reader.line_num}: more values than header columns")
            rows.append((reader.line_num, dict(record)))
    return rows
