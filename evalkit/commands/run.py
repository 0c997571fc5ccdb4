"""`evalkit run SUITE`: run a suite, print candidates × metrics, write the run directory."""

from __future__ import annotations

import argparse
import sys

from rich.table import Table

from evalkit.api import run_suite
from evalkit.commands.console import RichProgress, console
from evalkit.results import RunResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run a suite and write its report")
    parser.add_argument("suite", help="the suite YAML file")
    parser.add_argument("--out", help="root directory of run directories (default: the suite's output_dir)")
    parser.add_argument("--candidate", action="append", dest="candidates",
                        help="run only this candidate (repeatable)")
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
        table.add_row(metric, *[f"{means[c.name][metric]:.3f}" if metric in means[c.name] else "–"
                                for c in run.candidates])
    return table


def handle(args: argparse.Namespace) -> int:
    """Run the suite; exit 0 when it completed."""
    progress = RichProgress()
    try:
        run = run_suite(args.suite, output_dir=args.out, progress=progress,
                        candidates=args.candidates, command=" ".join(["evalkit", *sys.argv[1:]]))
    finally:
        progress.close()
    console.print(metrics_table(run))
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if run.run_dir is not None:
        console.print(f"report: {run.run_dir / 'report.html'}")
    return 0
