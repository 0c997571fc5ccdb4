"""`evalkit export RUN --format csv|parquet|jsonl --out FILE`: a run's items × metrics as a table file.

The table is :meth:`evalkit.results.RunResult.to_pandas`: one row per candidate and
item, the prompt, reference and prediction, and one column per metric. The file is
written whole or not at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.commands.console import console
from evalkit.errors import ConfigError
from evalkit.safe_write import write_bytes

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "parquet", "jsonl")


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
    parser.add_argument("--reasons", action="store_true", help="add each score's reason beside its value")
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


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """Return ``frame`` (index included as columns) as the bytes of a ``fmt`` file."""
    flat = frame.reset_index()
    if fmt == "csv":
        return str(flat.to_csv(index=False)).encode("utf-8")
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
    fmt = export_format(out, args.format)
    frame = load_run(args.run, store=args.store).to_pandas(reasons=args.reasons)
    write_table(frame, out, fmt)
    console.print(f"wrote {len(frame)} rows × {len(frame.columns)} columns to {out} ({fmt})")
    return 0
