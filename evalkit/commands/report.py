"""`evalkit report RUN` rebuilds a run's HTML report; `evalkit report --compare A B` compares two runs.

RUN, A and B are run ids in the run store or run directories (``summary.json`` +
``results.jsonl``); a run directory works without any store.

Also in this module:

* `evalkit export RUN --format csv|parquet|jsonl --out FILE`: a run's items × metrics as a table file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.commands.console import console
from evalkit.errors import ConfigError, EvalkitError
from evalkit.files.home import STORE_DEFAULT_HELP
from evalkit.files.safe_write import confined_path, safe_name, write_bytes, write_text
from evalkit.record.results import RunResult
from evalkit.record.run_dir import is_run_dir, load_run_dir
from evalkit.report.render import render_report
from evalkit.report.two_runs import merge_runs

HISTORY_RUNS = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report", help="rebuild a run's HTML report, or build one comparing two runs",
        description="Rebuild the self-contained HTML report of a stored run (a run id or a run "
                    "directory), or with --compare A B build one comparing run B against run A.")
    parser.add_argument("run", nargs="?", help="a run id in the store, or a run directory")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="compare run B's candidates with their namesakes in run A")
    parser.add_argument("--out", help="the HTML file to write (default: RUN_DIR/report.html for a run "
                                      "directory, else ./report-<id>.html or ./compare-<A>-vs-<B>.html)")
    parser.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    parser.set_defaults(handler=handle)


def _store(path: str | None) -> Any:
    """Return the run store, or None when none exists (a run directory needs none)."""
    from evalkit.store import RunStore, resolve_store_path

    resolved = resolve_store_path(None, path)
    if path is None and not resolved.exists():
        return None
    return RunStore(resolved, read_only=True)


def load_reference(reference: str, store: Any) -> RunResult:
    """Load a run from a run id (needs the store) or a run directory.

    Raises:
        ConfigError: neither a run directory nor, without a store, a run id.
        StoreError: the store has no such run.
    """
    if store is not None:
        run: RunResult = store.find_run(reference)
        return run
    path = Path(reference).expanduser()
    if is_run_dir(path):
        return load_run_dir(path.resolve())
    raise ConfigError(f"'{reference}' is not a run directory (no summary.json) and no run store exists to "
                      "look it up as a run id; pass a run directory or --store PATH")


def default_output(*run_ids: str) -> Path:
    """Return ``./report-<id>.html`` or ``./compare-<A>-vs-<B>.html`` for validated run ids.

    Raises:
        ConfigError: a run id is not a safe name (it could name a path outside ``.``).
    """
    for run_id in run_ids:
        safe_name(run_id, "run id")
    name = f"report-{run_ids[0]}.html" if len(run_ids) == 1 else f"compare-{run_ids[0]}-vs-{run_ids[1]}.html"
    return confined_path(Path.cwd(), name, "report file name")


def _with_comparison(run: RunResult, store: Any) -> RunResult:
    """Add the comparison to a run that has none (runs stored before comparisons existed)."""
    if "comparison" in run.sections or sum(c.status == "ok" for c in run.candidates) < 2:
        return run
    # numpy (via compare): loaded only when this compares
    from evalkit.comparison.compare import compare_candidates

    policy = store.thresholds(run.run_id) if store is not None and store.has_run(run.run_id) else None
    run.set_section("comparison", compare_candidates(run, policy=policy))
    return run


def handle(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    if bool(args.run) == bool(args.compare):
        raise ConfigError("give either RUN or --compare A B (see `evalkit report --help`)")
    store = _store(args.store)
    try:
        if args.compare:
            # numpy (via compare): loaded only when this compares
            from evalkit.comparison.compare import compare_runs

            before, after = (load_reference(r, store) for r in args.compare)
            policy = store.thresholds(after.run_id) if store is not None and store.has_run(after.run_id) else None
            comparison = compare_runs(before, after, policy=policy).to_dict()
            html = render_report(merge_runs(before, after, comparison), compare_runs=(before.run_id, after.run_id))
            out = Path(args.out) if args.out else default_output(before.run_id, after.run_id)
        else:
            run = _with_comparison(load_reference(args.run, store), store)
            history = store.run_summaries(run.suite_name, before=run.run_id, limit=HISTORY_RUNS) if store else []
            html = render_report(run, history=history)
            if args.out:
                out = Path(args.out)
            elif run.run_dir is not None and Path(run.run_dir).is_dir():
                out = Path(run.run_dir) / "report.html"
            else:
                out = default_output(run.run_id)
    except OSError as exc:
        raise EvalkitError(f"cannot read the run: {exc}") from None
    finally:
        if store is not None:
            store.close()
    try:
        write_text(out, html)
    except OSError as exc:
        raise EvalkitError(f"cannot write {out}: {exc.strerror}; pass --out with a writable path") from None
    console.print(f"report: {out}")
    return 0


# `evalkit export RUN --format csv|parquet|jsonl --out FILE`: a run's items × metrics as a table file.
#
# The table (:func:`export_frame`) is :meth:`evalkit.record.results.RunResult.to_pandas` with the
# context a row needs to be read on its own: the run id, the candidate's identity (model
# source and fingerprint, adapter and its hash, prompt hash, backend), the item's own
# fields (``input.<field>``; a nested value as its JSON text), then the prompt, reference
# and prediction, and each metric with its reason beside it. The file is written whole or
# not at all, and the shape printed is the file's own (rows × columns as written).
#
# CSV files get opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``
# or ``@`` (or a tab or carriage return before one) as a formula: a model's output such as
# ``=HYPERLINK(...)`` would become a live link. So in CSV, and only there, such a text
# cell (and column name) is prefixed with a single quote, as OWASP's CSV-injection
# guidance says (:func:`spreadsheet_safe`); numbers are left alone. Rows end in CRLF
# (RFC 4180), so a cell holding a carriage return is quoted rather than split across
# rows. Parquet and JSONL keep every text exactly.

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.record.results import RunResult

FORMATS = ("csv", "parquet", "jsonl")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is a formula (or leads to one) in a spreadsheet."""


def register_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.set_defaults(handler=handle_export)


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


def handle_export(args: argparse.Namespace) -> int:
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
