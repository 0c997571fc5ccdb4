"""`evalkit run SUITE`: run a suite, print candidates × metrics, write the run directory."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape
from rich.table import Table

from evalkit.api import run_suite
from evalkit.bars import failed_gates
from evalkit.commands.compare import print_comparison
from evalkit.commands.console import RichProgress, console
from evalkit.compare import Comparison
from evalkit.results import RunResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run a suite and write its report")
    parser.add_argument("suite", help="the suite YAML file")
    parser.add_argument("--out", help="root directory of run directories (default: the suite's output_dir)")
    parser.add_argument("--candidate", action="append", dest="candidates",
                        help="run only this candidate (repeatable)")
    parser.add_argument("--store", help="the run store (default: the suite's store:, else $EVALKIT_HOME/evalkit.db)")
    parser.add_argument("--no-cache", action="store_true",
                        help="generate every item again instead of reusing the store's generation cache")
    parser.set_defaults(handler=handle)


def metrics_table(run: RunResult) -> Table:
    """Return a rich table of metric means: one row per metric, one column per candidate."""
    metrics: list[str] = []
    for candidate in run.candidates:
        metrics += [m for m in candidate.metric_names() if m not in metrics]
    table = Table(title=f"{run.suite_name} (baseline: {run.baseline})")
    table.add_column("metric")
    for candidate in run.candidates:
        table.add_column(candidate.name, justify="right")
    means = {c.name: c.metrics() for c in run.candidates}
    table.add_row("items", *[str(len(c.items)) if c.status == "ok" else "skipped" for c in run.candidates])
    for metric in metrics:
        table.add_row(escape(metric), *[f"{means[c.name][metric]:.3f}" if metric in means[c.name] else "–"
                                for c in run.candidates])
    return table


def bars_table(run: RunResult) -> Table:
    """Return a rich table of the run's bars: candidate, bar, value, status and what was found."""
    table = Table(title="bars")
    for column in ("candidate", "bar", "value", "status", "found"):
        table.add_column(column, justify="right" if column == "value" else "left")
    colours = {"passed": "green", "failed": "red", "not_counted": "yellow"}
    for bar in run.sections.get("bars", []):
        value = "–" if bar["value"] is None else f"{bar['value']:.3f}"
        status = f"[{colours[bar['status']]}]{bar['status'].replace('_', ' ')}[/]"
        table.add_row(escape(bar["candidate"]), escape(bar["expression"]), value, status, escape(bar["message"]))
    return table


def handle(args: argparse.Namespace) -> int:
    """Run the suite; exit 0 when it completed with every bar met and no regression, else 1."""
    progress = RichProgress()
    try:
        run = run_suite(args.suite, output_dir=args.out, progress=progress,
                        candidates=args.candidates, command=" ".join(["evalkit", *sys.argv[1:]]),
                        store=args.store, cache=not args.no_cache)
    finally:
        progress.close()
    console.print(metrics_table(run))
    if run.sections.get("comparison"):
        print_comparison(Comparison.from_dict(run.sections["comparison"]), flips=0)
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if run.sections.get("bars"):
        console.print(bars_table(run))
    if run.run_dir is not None:
        console.print(f"report: {run.run_dir / 'report.html'}")
    failures = failed_gates(run)
    for line in failures:
        console.print(f"[red]FAILED[/red] {escape(line)}", highlight=False)
    return 1 if failures else 0
