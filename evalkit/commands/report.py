"""`evalkit report RUN` rebuilds a run's HTML report; `evalkit report --compare A B` compares two runs.

RUN, A and B are run ids in the run store or run directories (``summary.json`` +
``results.jsonl``); a run directory works without any store.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalkit.commands.console import console
from evalkit.errors import ConfigError, EvalkitError
from evalkit.files.home import STORE_DEFAULT_HELP
from evalkit.files.safe_write import confined_path, safe_name, write_text
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
    run.sections["comparison"] = compare_candidates(run, policy=policy).to_dict()
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
