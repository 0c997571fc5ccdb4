"""The commands that read stored runs: `evalkit report`, `export`, `compare` and `history`.

`evalkit report RUN` rebuilds a run's HTML report; `evalkit report --compare A B` compares two runs.
RUN, A and B are run ids in the run store or run directories (``summary.json`` +
``results.jsonl``); a run directory works without any store.

Also here:

* `evalkit export RUN --format csv|parquet|jsonl --out FILE`: a run's items × metrics as a table file
  (:func:`handle_export`, :func:`export_frame`).
* `evalkit compare A [B]`: paired comparison of candidates, within one run or across two (:func:`handle_compare`).
* `evalkit history SUITE`: each metric's trend across a suite's stored runs, with drift flags (:func:`handle_history`).
"""

from __future__ import annotations

import argparse
import fnmatch
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from evalkit.commands.console import add_json_option, console, emit_json
from evalkit.comparison.compare import (
    CandidateComparison,
    Comparison,
    compare_candidates,
    compare_runs,
    set_standings,
    shown_value,
)
from evalkit.comparison.result import ThresholdPolicy
from evalkit.errors import ConfigError, EvalkitError, StoreError
from evalkit.files.home import STORE_DEFAULT_HELP, confined_path, safe_name, write_bytes, write_text
from evalkit.record.results import RunResult
from evalkit.record.run_dir import is_run_dir, load_run_dir
from evalkit.report.render import merge_runs, render_report
from evalkit.store import RunRecord, RunStore, default_store_path, resolve_store_path
from evalkit.store.runs import MetricTrend, metric_trends

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


# `evalkit compare A [B]`: paired comparison of candidates, within one run or across two.
#
# Two runs: what changed between each pair's sides (identity, prompt text diff, settings,
# data, versions) comes first, then the metrics. Each candidate's standing follows the one
# rule (deployable only with counted bars of its run, every one passed, nothing regressed);
# it is shown and in ``--json``, but the exit code is the regression's alone.
#
# Exit codes: 0 no compared metric regressed (whatever the bars: a candidate without bars
# is "no bars", not deployable, and still exits 0), 1 a candidate regressed on some metric,
# 2 a usage, config or store error. See docs/comparison.md.
#
# Also in this module:
#
# * `evalkit history SUITE`: each metric's trend across a suite's stored runs, with drift flags.

_VERDICT_STYLE = {"regressed": "bold red", "improved": "green", "inconclusive": "yellow", "no_change": ""}
_STANDING = {  # a candidate's standing in words; {run}: the run whose bars decide it
    "deployable": "[green]deployable[/green]: every bar of run {run} passed, nothing regressed",
    "blocked": "[bold red]not deployable[/bold red]: a metric regressed, or a bar of run {run} failed",
    "undecided": "[yellow]not deployable yet[/yellow]: a bar of run {run} is inconclusive",
    "no_bars": "no bars: run {run} sets none for it, so it is not deployable",
    "baseline": "the baseline of run {run}: not deployable on its own",
}
PROMPT_DIFF_LINES = 60
"""Prompt diff lines printed per pair; ``--json`` has the whole diff."""


def register_compare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare", help="compare candidates with paired statistics (within a run or across two runs)",
        description="Compare run B's candidates with run A's (each with its namesake, or the pair "
                    "named by --baseline/--candidate), or, given one run, its candidates with its "
                    "baseline. A run is a run id in the store or a run directory. Exit codes: 0 no "
                    "regression, 1 a regression, 2 a usage or store error.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="baseline run, then candidate run (or one run)")
    parser.add_argument("--candidate", help="the candidate to compare (in run B, or in the one run)")
    parser.add_argument("--baseline", help="the baseline candidate (in run A, or in the one run)")
    parser.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    parser.add_argument("--flips", type=int, default=10, metavar="N",
                        help="item ids listed per flip direction and metric (default: %(default)s)")
    add_json_option(parser, "the comparison")
    parser.set_defaults(handler=handle_compare)


def handle_compare(args: argparse.Namespace) -> int:
    """Compare, print, and return 1 when a candidate regressed."""
    if len(args.runs) > 2:
        raise StoreError(f"compare takes one or two runs, got {len(args.runs)}: {' '.join(args.runs)}")
    store_path = Path(args.store).expanduser() if args.store else default_store_path()
    runs, policy = load_runs(args.runs, store_path)
    if len(runs) == 1:
        comparison = set_standings(compare_candidates(
            runs[0], seed=args.seed, baseline=args.baseline,
            candidates=[args.candidate] if args.candidate else None, policy=policy,
        ), runs[0])
    else:
        comparison = compare_runs(runs[0], runs[1], baseline=args.baseline, candidate=args.candidate,
                                  policy=policy, seed=args.seed)
    if not emit_json(args.json_out, comparison.to_dict()):
        print_comparison(comparison, flips=args.flips)
    return 1 if comparison.regressed else 0


def load_runs(references: list[str], store_path: Path) -> tuple[list[RunResult], ThresholdPolicy]:
    """Load runs by id or directory, and the thresholds of the last one (the candidate run).

    Raises:
        StoreError: a reference is neither a stored run nor a run directory.
    """
    if not store_path.is_file():
        missing = [r for r in references if not (Path(r).expanduser() / "summary.json").is_file()]
        if missing:
            raise StoreError(f"no run store at {store_path}, and '{missing[0]}' is not a run directory; "
                             "pass --store PATH or a run directory")
        from evalkit.record.run_dir import load_run_dir

        return [load_run_dir(Path(r).expanduser().resolve()) for r in references], ThresholdPolicy()
    with RunStore(store_path, read_only=True) as store:
        runs = [store.find_run(reference) for reference in references]
        last = runs[-1].run_id
        policy = store.thresholds(last) if store.has_run(last) else ThresholdPolicy()
    return runs, policy


def comparison_table(comparison: CandidateComparison, title: str | None = None) -> Table:
    """Return a table of one candidate's metrics against its baseline."""
    table = Table(title=title or f"{comparison.candidate} vs {comparison.baseline}")
    for column, justify in (("metric", "left"), ("n", "right"), ("baseline", "right"),
                            ("candidate", "right"), ("delta", "right"), ("95% CI", "right"),
                            ("p", "right"), ("test", "left"), ("threshold", "right"), ("verdict", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for metric in comparison.metrics.values():
        verdict = metric.verdict.replace("_", " ")
        if metric.verdict == "inconclusive" and metric.items_needed:
            verdict += f" (~{metric.items_needed} items)"
        style = _VERDICT_STYLE[metric.verdict]
        table.add_row(
            escape(metric.metric), str(metric.n_items), f"{metric.baseline_value:.3f}", f"{metric.candidate_value:.3f}",
            f"{metric.delta:+.3f}", f"[{metric.ci_low:+.3f}, {metric.ci_high:+.3f}]", f"{metric.p_value:.3g}",
            metric.test, metric.threshold, f"[{style}]{verdict}[/{style}]" if style else verdict,
        )
    return table


def print_identity(comparison: Comparison) -> None:
    """Print what changed between each compared pair's two runs (nothing for a comparison within one run)."""
    for candidate in comparison.candidates.values():
        diff = candidate.identity
        if diff is None:
            continue
        summary = f"[bold]{escape(diff.summary)}[/bold]" if diff.changes else escape(diff.summary)
        console.print(f"{escape(candidate.candidate)} (run {escape(comparison.candidate_run_id)}) vs "
                      f"{escape(candidate.baseline)} (run {escape(comparison.baseline_run_id)}): {summary}",
                      highlight=False)
        for change in diff.changes:
            console.print(f"  {escape(change.field)}: {escape(shown_value(change.before))} -> "
                          f"{escape(shown_value(change.after))}", highlight=False)
        lines = diff.prompt_diff.splitlines()
        for line in lines[:PROMPT_DIFF_LINES]:
            colour = "red" if line.startswith("-") else "green" if line.startswith("+") else ""
            console.print(f"    [{colour}]{escape(line)}[/{colour}]" if colour else f"    {escape(line)}",
                          highlight=False, soft_wrap=True)
        if len(lines) > PROMPT_DIFF_LINES:
            console.print(f"    ... {len(lines) - PROMPT_DIFF_LINES} more diff lines (--json has them all)")
        for note in diff.notes:
            console.print(f"  [yellow]note:[/yellow] {escape(note)}", highlight=False)


def print_comparison(comparison: Comparison, flips: int = 10) -> None:
    """Print what changed (two runs), each candidate's table, its flipped items, its standing and the verdict line."""
    where = (f"run {comparison.candidate_run_id}" if comparison.baseline_run_id == comparison.candidate_run_id
             else f"run {comparison.candidate_run_id} vs run {comparison.baseline_run_id}")
    for note in comparison.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    print_identity(comparison)
    for candidate in comparison.candidates.values():
        console.print(comparison_table(candidate, f"{candidate.candidate} vs {candidate.baseline} ({where})"))
        for metric in candidate.metrics.values():
            for label, ids, total in (("pass->fail", metric.pass_to_fail, metric.n_pass_to_fail),
                                      ("fail->pass", metric.fail_to_pass, metric.n_fail_to_pass)):
                if ids and flips > 0:
                    listed = ids[:flips]
                    shown = ", ".join(listed) + (f" ... (+{total - len(listed)})" if total > len(listed) else "")
                    console.print(f"  {escape(metric.metric)} {label} ({total}): {escape(shown)}", highlight=False)
        for metric in candidate.regressions:
            console.print(f"[bold red]regressed[/bold red] {candidate.candidate} {escape(metric.metric)}: "
                          f"{escape(metric.explain())}", highlight=False)
    for candidate in comparison.candidates.values():
        if candidate.status in _STANDING:
            standing = _STANDING[candidate.status].format(run=escape(comparison.candidate_run_id))
            console.print(f"{escape(candidate.candidate)}: {standing}", highlight=False)
    if not comparison.candidates:
        console.print("nothing compared")
    elif not comparison.regressed:
        console.print("[green]no regression[/green]")


# `evalkit history SUITE`: each metric's trend across a suite's stored runs, with drift flags.

_SPARKS = "▁▂▃▄▅▆▇█"


def register_history(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.set_defaults(handler=handle_history)


def handle_history(args: argparse.Namespace) -> int:
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
