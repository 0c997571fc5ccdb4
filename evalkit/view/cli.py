"""``evalkit view`` (the review web app) and ``evalkit labels export`` (its labels, for calibration and DPO).

Registered from :data:`evalkit.commands.COMMAND_MODULES`; imports nothing heavy until a
command runs, so ``evalkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from evalkit.errors import ConfigError, StoreError
from evalkit.files.home import STORE_DEFAULT_HELP


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``view`` and ``labels`` subcommands."""
    view = subparsers.add_parser(
        "view", help="browse the run store in a local web app: diff runs with statistics, label items",
        description="Serve a web app over the run store: suites and their runs, a run's metrics and verdict, "
                    "a diff of two runs or candidates with paired statistics, items with filters, and human "
                    "labels. Binds loopback by default; another --host needs the token it prints.",
    )
    view.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    view.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default: %(default)s; any other needs the printed token)")
    view.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    view.add_argument("--read-only", action="store_true", help="refuse every write (labels), for a shared store")
    view.add_argument("--author", default=None, help="name labels are written under (default: your user name)")
    view.add_argument("--rubric", action="append", default=[], metavar="FILE",
                      help="a rubric whose criteria can be scored 1..5 (repeatable); the runs' judges' "
                           "rubrics are offered too")
    view.set_defaults(handler=handle_view)

    labels = subparsers.add_parser(
        "labels", help="export the human labels made in `evalkit view`",
        description="Export the labels made in `evalkit view`: calibration (the labels file `evalkit rubric "
                    "calibrate` reads), dpo (the preference file `evalkit train --method dpo` reads) or jsonl "
                    "(every label, raw).",
    )
    actions = labels.add_subparsers(dest="labels_action", metavar="ACTION")
    actions.required = True
    export = actions.add_parser("export", help="write the labels to a file")
    export.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    export.add_argument("--format", required=True, choices=("calibration", "dpo", "jsonl"), dest="fmt")
    export.add_argument("--out", required=True, metavar="FILE", help="the JSONL file to write")
    export.add_argument("--rubric", metavar="FILE", help="the rubric whose criteria were scored (calibration)")
    export.set_defaults(handler=handle_export)


def _store_path(value: str | None) -> Path:
    from evalkit.store import default_store_path

    return Path(value).expanduser() if value else default_store_path()


def handle_view(args: argparse.Namespace) -> int:
    """Open the store, bind, print the URL and serve until Ctrl-C."""
    from evalkit.judges.rubric import load_rubric
    from evalkit.view.app import Access, ViewConfig, bind, make_server, serve, url_of

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    store = _store_path(args.store)
    if not store.is_file():
        raise StoreError(f"no run store at {store}; run a suite first or pass --store PATH")
    rubrics = {}
    for path in args.rubric:
        rubric = load_rubric(path)
        rubrics[rubric.name] = list(rubric.criterion_names)
    access = Access.for_host(args.host, read_only=args.read_only)
    config = ViewConfig(store_path=store, access=access, author=args.author or getpass.getuser(), rubrics=rubrics)
    server = make_server(config)  # opens the store and warms up before the URL is printed
    sock = bind(args.host, args.port)
    print(f"evalkit view: serving {store} at {url_of(sock, access.token)}", flush=True)
    if access.token:
        print(f"evalkit view: listening on {args.host}: every request needs the token above", flush=True)
    serve(server, sock)
    return 0


def handle_export(args: argparse.Namespace) -> int:
    """Write the labels in the chosen format; nothing is written when there is nothing to export."""
    from evalkit.files.safe_write import json_text, write_text
    from evalkit.judges.rubric import load_rubric
    from evalkit.store import RunStore
    from evalkit.view.labels import export_records

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name the file to write")
    store = _store_path(args.store)
    if not store.is_file():
        raise StoreError(f"no run store at {store}; pass --store PATH")
    rubric = load_rubric(args.rubric) if args.rubric else None
    with RunStore(store, read_only=True) as opened:
        records = opened.read(lambda conn: export_records(conn, args.fmt, rubric))
    if not records:
        what = {"calibration": "outputs with every criterion of the rubric scored",
                "dpo": "items with one output labelled pass and another labelled fail", "jsonl": "labels"}[args.fmt]
        raise ConfigError(f"nothing to export from {store}: no {what}; label some in `evalkit view`")
    write_text(out, "".join(json_text(record) + "\n" for record in records))
    print(f"wrote {len(records)} {args.fmt} record{'s' if len(records) != 1 else ''} to {out}")
    return 0
