"""`evalkit run SUITE`: run a suite, print candidates × metrics, write the run directory.

Also in this module:

* ``evalkit run --from RUN``: run again exactly the suite a stored run ran.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from evalkit.api import load_run, run_suite
from evalkit.bars.verdict import run_verdict
from evalkit.commands.console import add_json_option, console, emit_json, progress_reporter
from evalkit.commands.report import print_comparison
from evalkit.errors import ConfigError
from evalkit.executors import suite_on_ray
from evalkit.files.home import STORE_DEFAULT_HELP
from evalkit.progress import Progress
from evalkit.record.results import RunResult, comparison_section
from evalkit.record.run_dir import rerun_differences, suite_from_run, version_changes
from evalkit.runner import plan_suite
from evalkit.suite.config import apply_limit

RUN_EPILOG = """A candidate that cannot be evaluated (an adapter that is missing and has no train:
config, a model directory that does not exist) stops the run before anything is
generated, exit 2, with the command that makes it. Let a candidate be missing with
`optional: true` in the suite or --allow-missing NAME; it is then reported as not
evaluated, and its bars do not count.

Bars: a drop bar (max_drop, no significant regression) is inconclusive when the data
cannot decide it; the suite's `inconclusive: fail` (the default) makes that exit 1,
`inconclusive: warn` reports it without failing."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run a suite and write its report", epilog=RUN_EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", help="the suite YAML file (or --from RUN)")
    parser.add_argument("--from", dest="from_run", metavar="RUN",
                        help="rerun exactly the suite a run ran (a run id or run directory), from its recorded "
                             "resolved suite, not the suite file; refused (exit 2) when its dataset or a "
                             "candidate's model, adapter or prompt changed since")
    parser.add_argument("--out", help="root directory of run directories (default: the suite's output_dir)")
    parser.add_argument("--candidate", action="append", dest="candidates",
                        help="run only this candidate (repeatable)")
    parser.add_argument("--store", help=f"the run store (default: the suite's store:, else {STORE_DEFAULT_HELP})")
    parser.add_argument("--allow-missing", action="append", dest="allow_missing", metavar="NAME", default=[],
                        help="let this candidate be missing (repeatable): reported as not evaluated "
                             "instead of stopping the run (as `optional: true` in the suite)")
    parser.add_argument("--no-cache", action="store_true",
                        help="generate every item again instead of reusing the store's generation cache")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="generate on a Ray cluster: local (start one here), auto, ray://HOST:PORT "
                             "(replaces the suite's executor: address; needs pip install 'evalkit[ray]')")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="quick run: the first N items per candidate and a smaller benchmark sample "
                             "(recorded in the run; not comparable with full runs)")
    parser.add_argument("--set", action="append", dest="sets", metavar="KEY=VALUE", default=[],
                        help="override a suite value for this run, by dotted path, validated like the YAML: "
                             "--set generation.max_new_tokens=64 (repeatable)")
    add_json_option(parser, "the run's summary (summary.json)")
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
    table.add_row("items", *[str(len(c.items)) if c.status == "ok" else "not evaluated" for c in run.candidates])
    for metric in metrics:
        table.add_row(escape(metric), *[f"{means[c.name][metric]:.3f}" if metric in means[c.name] else "–"
                                for c in run.candidates])
    return table


def bars_table(run: RunResult) -> Table:
    """Return a rich table of every bar of the run, the rows the report's bars section shows.

    Columns: candidate, bar, value (a drop bar's change against the baseline), 95%
    interval, status, and what decided the bar or would decide it
    (:func:`evalkit.bars.view.bar_rows`).
    """
    from evalkit.bars.view import bar_rows

    table = Table(title="bars")
    for column in ("candidate", "bar", "value", "95% interval", "status", "to decide"):
        table.add_column(column, justify="right" if column in ("value", "95% interval") else "left")
    colours = {"passed": "green", "failed": "red", "inconclusive": "yellow", "not_counted": "yellow"}
    for row in bar_rows(run):
        value = f"{row.value} ({row.value_detail})" if row.value_detail else row.value
        status = f"[{colours[row.status]}]{escape(row.status_label)}[/]"
        table.add_row(escape(row.candidate), escape(row.expression), escape(value), escape(row.interval), status,
                      escape(row.decide))
    return table


def contamination_table(run: RunResult) -> Table | None:
    """Return a rich table of the run's contamination section (None when it has none).

    One row per candidate and item set (each benchmark, the eval set): how many items
    share an n-gram with the candidate's training data, flagged when any do, and one
    example; a candidate whose training data is unknown gets one row saying so.
    """
    from evalkit.contamination.view import EVAL_SET, contamination_section, describe_overlap

    section = contamination_section(run)
    if section is None:
        return None
    table = Table(title=f"contamination (items sharing a {section.n}-gram with the candidate's training data)")
    for column in ("candidate", "items", "found", "example"):
        table.add_column(column)
    for candidate, entry in section.candidates.items():
        if entry.training.status != "known":
            table.add_row(escape(candidate), "all", "[yellow]training data unknown[/]", escape(entry.training.reason))
            continue
        sets = list(entry.benchmarks.items()) + ([(EVAL_SET, entry.eval_set)] if entry.eval_set else [])
        for name, overlap in sets:
            found = describe_overlap(overlap)
            found = f"[red]CONTAMINATED {found}[/]" if overlap.contaminated else found
            example = f"{overlap.examples[0].item_id}: {overlap.examples[0].ngram}" if overlap.examples else ""
            table.add_row(escape(candidate), escape(name), found, escape(example))
    for name, reason in section.unlisted.items():
        table.add_row("–", escape(name), "[yellow]not tested[/]", escape(reason))
    return table


def check_suite_source(args: argparse.Namespace) -> None:
    """Check that the run has one source: a suite file, or ``--from RUN`` without options that change it.

    Raises:
        ConfigError: neither or both, or ``--from`` with ``--set``, ``--candidate``,
            ``--allow-missing``, ``--limit`` or ``--ray`` (the recorded suite is run as it was).
    """
    if args.from_run is None:
        if args.suite is None:
            raise ConfigError("evalkit run: give a suite file, or --from RUN to rerun a run")
        return
    if args.suite is not None:
        raise ConfigError(f"evalkit run: give a suite file or --from {args.from_run}, not both")
    changing = [option for option, given in (("--set", args.sets), ("--candidate", args.candidates),
                                             ("--allow-missing", args.allow_missing), ("--limit", args.limit),
                                             ("--ray", args.ray)) if given]
    if changing:
        raise ConfigError(f"evalkit run --from reruns the recorded suite exactly; {changing[0]} would change it "
                          "(run the suite file with it instead)")


def handle(args: argparse.Namespace) -> int:
    """Run the suite; exit 0 when every bar is met and nothing regressed, 1 otherwise.

    What counts is :func:`evalkit.bars.verdict.run_verdict`, which the report and the pytest
    plugin share.
    """
    check_suite_source(args)
    progress = progress_reporter()
    command = " ".join(["evalkit", *sys.argv[1:]])
    try:
        if args.from_run:

            run = rerun(args.from_run, store=args.store, output_dir=args.out, progress=progress,
                        command=command, cache=not args.no_cache)
        else:
            if args.ray and args.sets:
                raise ConfigError("--ray with --set: give the address as --set executor.ray.address=ADDRESS instead")
            suite = suite_on_ray(args.suite, args.ray) if args.ray else args.suite
            run = run_suite(suite, output_dir=args.out, progress=progress,
                            candidates=args.candidates, command=command,
                            store=args.store, cache=not args.no_cache, allow_missing=args.allow_missing,
                            overrides=args.sets, limit=args.limit)
    finally:
        progress.close()
    if emit_json(args.json_out, run.summary()):
        return run_verdict(run).exit_code
    console.print(metrics_table(run))
    contamination = contamination_table(run)
    if contamination is not None:
        console.print(contamination)
    comparison = comparison_section(run.sections)
    if comparison is not None:
        print_comparison(comparison, flips=0)
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if run.section("bars"):
        console.print(bars_table(run))
    if run.run_dir is not None:
        console.print(f"report: {run.run_dir / 'report.html'}")
    verdict = run_verdict(run)
    for gate in verdict.candidates:
        if gate.status == "not_evaluated":
            console.print(f"[yellow]NOT EVALUATED[/yellow] {escape(gate.name)}: {escape(gate.note)}", highlight=False)
    for line in verdict.warnings:
        console.print(f"[yellow]UNDECIDED[/yellow] {escape(line)} (not gating: inconclusive: warn)", highlight=False)
    for line in verdict.failures:
        label = "UNDECIDED" if line.startswith("inconclusive bar") else "FAILED"
        console.print(f"[red]{label}[/red] {escape(line)}", highlight=False)
    colour = "green" if verdict.passed else "red"
    console.print(f"[{colour}]verdict:[/{colour}] {escape(verdict.headline())}", highlight=False)
    return verdict.exit_code


# ``evalkit run --from RUN``: run again exactly the suite a stored run ran.
#
# The suite comes from the run's ``resolved_suite`` record (:mod:`evalkit.record.run_dir`),
# not from the suite file, so editing the file afterwards changes nothing. The rerun is
# planned first and refused (ConfigError, exit 2, naming each difference) when the
# dataset or a candidate's model, adapter, prompt, backend or engine options are no
# longer what the run used; nothing is generated then. Library versions that changed
# are a warning of the new run, not a refusal.

def rerun(
    reference: str | Path,
    *,
    store: str | Path | None = None,
    output_dir: str | Path | None = None,
    progress: Progress | None = None,
    command: str = "",
    cache: bool = True,
) -> RunResult:
    """Run again the resolved suite of the run ``reference`` (a run id or run directory).

    Args:
        reference: a stored run's id, or a run directory.
        store: the run store to find the run in and save the rerun to (default as :func:`run_suite`).
        output_dir: root of run directories; default the recorded suite's ``output_dir``.
        progress: progress reporter; default silent.
        command: the command line to record.
        cache: reuse the store's generation cache.

    Raises:
        ConfigError: the run records no resolved suite, or the rerun would differ (each
            difference named); StoreError: no such run.
    """
    previous = load_run(reference, store)
    config, record = suite_from_run(previous)
    if record.limit is not None:
        apply_limit(config, record.limit)  # the record holds the cuts already: this only re-derives them
    planned = plan_suite(config, progress=progress, only=record.candidates, allow_missing=record.allow_missing)
    differences = rerun_differences(previous, planned)
    if differences:
        raise ConfigError(f"cannot rerun {previous.run_id} exactly: {'; '.join(differences)}; "
                          f"run the suite file instead (evalkit run {record.suite_file})")
    changed = version_changes(previous)
    if changed and progress is not None:
        progress.note(f"rerunning {previous.run_id} with other library versions: {', '.join(changed)}")
    return run_suite(config, output_dir=output_dir, progress=progress, candidates=record.candidates,
                    command=command, store=store, cache=cache, allow_missing=record.allow_missing,
                    limit=record.limit, planned=planned)
