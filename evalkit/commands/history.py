"""`evalkit history SUITE`: each metric's trend across a suite's stored runs, with drift flags."""

from __future__ import annotations

import argparse
import fnmatch
from dataclasses import asdict
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from evalkit.commands.console import add_json_option, console, emit_json
from evalkit.errors import StoreError
from evalkit.files.home import STORE_DEFAULT_HELP
from evalkit.store import RunRecord, RunStore, default_store_path, resolve_store_path
from evalkit.store.trends import MetricTrend, metric_trends

_SPARKS = "▁▂▃▄▅▆▇█"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``history`` subcommand."""
    parser = subparsers.add_parser(
        "history", help="show each metric's trend across a suite's stored runs",
        description="Each candidate's metrics across the suite's stored runs, oldest first, flagging "
                    "drift: the latest run dropped beyond the metric's threshold from the first run "
                    "or from the best run.",
    )
    parser.add_argument("suite", help="a suite name, or a suite file (its name and store: are used)")
    parser.add_argument("--store", help=f"the run store (default: the suite's store:, else {STORE_DEFAULT_HELP})")
    parser.add_argument("--candidate", action="append", dest="candidates", help="only this candidate (repeatable)")
    parser.add_argument("--metric", action="append", dest="metrics", metavar="GLOB",
                        help="only metrics matching this glob, e.g. 'field_accuracy.*' (repeatable)")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="the newest N runs (default: %(default)s)")
    add_json_option(parser, "the runs and trends")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the suite's runs and metric trends; exit 0 (drift is reported, not failed)."""
    suite_name, store_path = _suite_and_store(args.suite, args.store)
    if not store_path.is_file():
        raise StoreError(f"no run store at {store_path}; run the suite first or pass --store PATH")
    with RunStore(store_path, read_only=True) as store:
        runs = store.list_runs(suite_name, limit=args.last)
        if not runs:
            known = ", ".join(store.suites()) or "none"
            raise StoreError(f"no stored runs of suite '{suite_name}' in {store_path}; suites stored: {known}")
        kept = {r.run_id for r in runs}
        points = [(p.run_id, p.candidate, p.metric, p.value) for p in store.metric_history(suite_name)
                  if p.run_id in kept]
        policy = store.thresholds(runs[-1].run_id)
    trends = [t for t in metric_trends(points, policy)
              if (not args.candidates or t.candidate in args.candidates)
              and (not args.metrics or any(fnmatch.fnmatchcase(t.metric, g) for g in args.metrics))]
    payload = {"runs": [asdict(r) for r in runs], "trends": [asdict(t) | {"drifted": t.drifted} for t in trends]}
    if emit_json(args.json_out, payload):
        return 0
    console.print(runs_table(suite_name, runs))
    for candidate in dict.fromkeys(t.candidate for t in trends):
        console.print(trends_table(candidate, [t for t in trends if t.candidate == candidate]))
    drifted = [t for t in trends if t.drifted]
    for trend in drifted:
        flags = (("the first run", trend.drifted_from_first),
                 (f"the best run {trend.best_run_id}", trend.drifted_from_best))
        against = " and ".join(name for name, flag in flags if flag)
        console.print(f"[bold red]drift[/bold red] {trend.candidate} {escape(trend.metric)}: "
                      f"latest {trend.values[-1]:.3f} "
                      f"dropped beyond {trend.threshold} from {against}; "
                      f"check it with `evalkit compare {trend.best_run_id} {trend.run_ids[-1]}`")
    if not drifted:
        console.print("[green]no drift[/green] beyond the thresholds")
    return 0


def _suite_and_store(reference: str, store: str | None) -> tuple[str, Path]:
    path = Path(reference).expanduser()
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        from evalkit.suite.config import load_suite

        suite = load_suite(path)
        return suite.name, resolve_store_path(suite, store)
    return reference, Path(store).expanduser() if store else default_store_path()


def sparkline(values: list[float]) -> str:
    """Return a one-line chart of ``values`` (the same height when they are all equal)."""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return _SPARKS[3] * len(values)
    return "".join(_SPARKS[round((v - low) / (high - low) * (len(_SPARKS) - 1))] for v in values)


def runs_table(suite: str, runs: list[RunRecord]) -> Table:
    """Return a table of the runs, oldest first."""
    table = Table(title=f"{suite}: {len(runs)} run(s)")
    for column in ("#", "run", "started", "git", "dataset", "candidates"):
        table.add_column(column)
    for number, run in enumerate(runs, start=1):
        table.add_row(str(number), run.run_id, run.started_at, (run.git_commit or "-")[:10],
                      (run.dataset_hash or "-")[:10], ", ".join(run.candidates))
    return table


def trends_table(candidate: str, trends: list[MetricTrend]) -> Table:
    """Return one candidate's metric trends: first, best, latest, drift and a sparkline."""
    table = Table(title=f"{candidate}")
    for column, justify in (("metric", "left"), ("runs", "right"), ("first", "right"), ("best", "right"),
                            ("latest", "right"), ("vs first", "right"), ("vs best", "right"), ("trend", "left"),
                            ("threshold", "right"), ("drift", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for trend in trends:
        flag = "[bold red]DRIFT[/bold red]" if trend.drifted else ""
        table.add_row(escape(trend.metric), str(len(trend.values)), f"{trend.values[0]:.3f}",
                      f"{max(trend.values):.3f}",
                      f"{trend.values[-1]:.3f}", f"{trend.drift_from_first:+.3f}", f"{trend.drift_from_best:+.3f}",
                      sparkline(trend.values), trend.threshold, flag)
    return table
