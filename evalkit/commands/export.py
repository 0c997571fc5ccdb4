"""`evalkit export RUN --format csv|parquet|jsonl --out FILE`: a run's items × metrics as a table file.

The table (:func:`export_frame`) is :meth:`evalkit.record.results.RunResult.to_pandas` with the
context a row needs to be read on its own: the run id, the candidate's identity (model
source and fingerprint, adapter and its hash, prompt hash, backend), the item's own
fields (``input.<field>``; a nested value as its JSON text), then the prompt, reference
and prediction, and each metric with its reason beside it. The file is written whole or
not at all, and the shape printed is the file's own (rows × columns as written).

CSV files get opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``
or ``@`` (or a tab or carriage return before one) as a formula: a model's output such as
``=HYPERLINK(...)`` would become a live link. So in CSV, and only there, such a text
cell (and column name) is prefixed with a single quote, as OWASP's CSV-injection
guidance says (:func:`spreadsheet_safe`); numbers are left alone. Rows end in CRLF
(RFC 4180), so a cell holding a carriage return is quoted rather than split across
rows. Parquet and JSONL keep every text exactly.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.commands.console import console
from evalkit.errors import ConfigError
from evalkit.files.safe_write import write_bytes

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.record.results import RunResult

FORMATS = ("csv", "parquet", "jsonl")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is a formula (or leads to one) in a spreadsheet."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export", help="write a run's per-item results (items × metrics) as CSV, Parquet or JSONL",
        description="Write one row per candidate and item (prompt, reference, prediction, one column "
                    "per metric) of a stored run or a run directory, for pandas, spreadsheets or SQL.",
    )
    parser.add_argument("run", metavar="RUN", help="a run id in the store, or a run directory")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--format", choices=FORMATS, help="default: from --out's suffix")
    parser.add_argument("--reasons", action="store_true",
                        help="(the default now) each score's reason beside its value; kept for old scripts")
    parser.add_argument("--store", help="the run store (default: $EVALKIT_STORE, else the data directory's)")
    parser.set_defaults(handler=handle)


def export_format(out: Path, requested: str | None) -> str:
    """Return the format to write: the requested one, else the one ``out``'s suffix names.

    Raises:
        ConfigError: no format given and the suffix names none.
    """
    if requested:
        return requested
    suffix = out.suffix.lstrip(".").lower()
    if suffix in FORMATS:
        return suffix
    raise ConfigError(f"--out {out}: cannot tell the format from '{out.suffix or 'no suffix'}'; "
                      f"pass --format {'|'.join(FORMATS)}")


IDENTITY_COLUMNS = ("model_source", "model_fingerprint", "adapter", "adapter_hash", "prompt_hash", "backend")
"""The candidate's identity, in every exported row (empty for a candidate that was not evaluated)."""
INPUT_PREFIX = "input."


def export_frame(run: RunResult) -> pd.DataFrame:
    """Return the run's rows with their context, flat (no index): see the module docstring."""
    import json

    import pandas as pd

    frame = run.to_pandas(reasons=True).reset_index()
    identities = {c.name: c.identity for c in run.candidates}
    fields: dict[tuple[str, str], dict[str, Any]] = {(c.name, item.item_id): item.fields
                                                     for c in run.candidates for item in c.items}
    names = list(dict.fromkeys(name for item_fields in fields.values() for name in item_fields))
    keys = list(zip(frame["candidate"], frame["item_id"], strict=True))

    def cell(value: Any) -> Any:
        # A nested value stays one cell: its JSON text.
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value

    context: dict[str, Any] = {"run_id": [run.run_id] * len(frame), "candidate": frame["candidate"],
                               "item_id": frame["item_id"]}
    for column in IDENTITY_COLUMNS:
        context[column] = [getattr(identities.get(name), column, None) for name in frame["candidate"]]
    for name in names:
        context[f"{INPUT_PREFIX}{name}"] = [cell(fields.get(key, {}).get(name)) for key in keys]
    rest = frame.drop(columns=["candidate", "item_id"])
    return pd.concat([pd.DataFrame(context, index=frame.index), rest], axis=1)


def spreadsheet_safe(value: Any) -> Any:
    """Return a text that a spreadsheet would run as a formula with a ``'`` in front; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def spreadsheet_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells and column names are :func:`spreadsheet_safe`."""
    import pandas as pd

    safe = frame.copy()
    for column in safe.columns:
        if pd.api.types.is_object_dtype(safe[column]) or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_safe)
    return safe.rename(columns=spreadsheet_safe)


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """Return ``frame`` (a named index included as columns) as the bytes of a ``fmt`` file.

    CSV's text cells are made spreadsheet-safe (see the module docstring); Parquet and
    JSONL are exact.
    """
    flat = frame if list(frame.index.names) == [None] else frame.reset_index()  # a flat frame gains no "index"
    if fmt == "csv":
        # CRLF rows (RFC 4180): a cell holding a lone CR is then quoted, not a row break.
        return str(spreadsheet_safe_frame(flat).to_csv(index=False, lineterminator="\r\n")).encode("utf-8")
    if fmt == "parquet":
        return bytes(flat.to_parquet(index=False))
    return str(flat.to_json(orient="records", lines=True, force_ascii=False)).encode("utf-8")


def write_table(frame: pd.DataFrame, out: Path, fmt: str) -> None:
    """Write ``frame`` (index included as columns) to ``out`` in ``fmt``, whole or not at all."""
    write_bytes(out, table_bytes(frame, fmt))


def handle(args: argparse.Namespace) -> int:
    """Load the run, build its table and write it; exit 0."""
    from evalkit.api import load_run

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; name the file to write, e.g. {out / 'items.csv'}")
    fmt = export_format(out, args.format)
    frame = export_frame(load_run(args.run, store=args.store))
    write_table(frame, out, fmt)
    console.print(f"wrote {len(frame)} rows × {len(frame.columns)} columns to {out} ({fmt})")
    return 0
