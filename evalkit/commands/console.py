"""The terminal side of the CLI: a rich console, a rich-backed progress reporter, and ``--json``.

Also in this module:

* Every command's ``--help`` shows examples, from one table here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from evalkit.files.home import json_text, write_text
from evalkit.progress import PlainProgress

# Wide enough for a comparison table's columns (metric, values, delta, interval, p, verdict).
PIPED_WIDTH = 160


def make_console(stderr: bool) -> Console:
    """Return a console for stdout or stderr.

    Piped output (a CI log, a file) has no width of its own, and rich would then wrap
    every table at 80 columns, one cell over several lines; it gets ``PIPED_WIDTH``
    unless ``COLUMNS`` says otherwise.
    """
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH)


console = make_console(stderr=False)
error_console = make_console(stderr=True)


class ItemRateColumn(ProgressColumn):
    """A bar's speed in items per second."""

    def render(self, task: Task) -> Text:
        """Return ``N.NN items/s`` (``–`` before the first item)."""
        speed = task.finished_speed or task.speed
        return Text("– items/s" if speed is None else f"{speed:.2f} items/s", style="progress.data.speed")


def progress_reporter() -> RichProgress | PlainProgress:
    """Return rich bars on a terminal (stderr), else plain lines every 10% or 30 s (CI logs, pipes)."""
    if error_console.is_terminal:
        return RichProgress()
    return PlainProgress(lambda line: error_console.print(line, markup=False, highlight=False, soft_wrap=True))


class RichProgress:
    """Draws one progress bar per task on stderr; notes are printed above the bars."""

    def __init__(self) -> None:
        """Create the progress display (not started until the first task)."""
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            ItemRateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=error_console,
            transient=False,
        )
        self._task: int | None = None

    def start(self, label: str, total: int) -> None:
        """Begin a new bar."""
        if self._task is None:
            self._progress.start()
        self._task = int(self._progress.add_task(escape(label), total=total))

    def advance(self, units: int) -> None:
        """Advance the current bar."""
        if self._task is not None:
            self._progress.advance(self._task, units)  # type: ignore[arg-type]

    def finish(self) -> None:
        """Complete the current bar."""
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(task.id, completed=task.total)

    def note(self, text: str) -> None:
        """Print a note."""
        self._progress.console.print(f"[yellow]{escape(text)}[/yellow]", highlight=False)

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()


# One meaning of ``--json`` across commands: ``--json FILE`` writes the result as JSON to FILE.
STDOUT = "-"


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--json [FILE]`` to a command: ``what`` names the result written."""
    parser.add_argument("--json", dest="json_out", metavar="FILE", nargs="?", const=STDOUT,
                        help=f"write {what} as JSON to FILE ('-' or no FILE: to stdout, instead of the tables)")


def emit_json(target: str | None, payload: Any) -> bool:
    """Write ``payload`` where ``--json`` said; return True when it went to stdout (skip the tables)."""
    if target is None:
        return False
    text = json_text(payload, indent=2) + "\n"
    if target == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    write_text(Path(target).expanduser(), text)
    return False


# Every command's ``--help`` shows examples, from one table here.
#
# :func:`add_examples` is called once by the CLI after the commands register: it gives
# each command an epilog with its examples (the CLI appends the exit-code table after
# them) and, where a parser has no description, its one-line help as one.

COMMAND_EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": ("evalkit run suites/classifier.yaml",
            "evalkit run suites/classifier.yaml --limit 20 --set generation.max_new_tokens=64",
            "evalkit run suites/classifier.yaml --json summary.json | cat"),
    "data": ("evalkit data classifier --out data/classifier",),
    "report": ("evalkit report RUN_ID", "evalkit report reports/classifier/RUN_ID --out report.html"),
    "compare": ("evalkit compare RUN_A RUN_B", "evalkit compare RUN --candidate lora --json comparison.json"),
    "history": ("evalkit history suites/classifier.yaml --metric 'field_accuracy.*'",
                "evalkit history classifier --json history.json"),
    "train": ("evalkit train train/classifier-lora.yaml",
              "evalkit train train/classifier-lora.yaml --max-steps 10 --out /tmp/try-lora"),
    "merge": ("evalkit merge train/classifier-lora --out adapters/classifier-lora-merged",),
    "parity": ("evalkit parity suites/classifier.yaml --limit 50 --json parity.json",),
    "rubric": ("evalkit rubric validate rubrics/classifier_quality.yaml",
               "evalkit rubric calibrate rubrics/classifier_quality.yaml --json calibration.json"),
    "export": ("evalkit export RUN_ID --out items.parquet",
               "evalkit export reports/classifier/RUN_ID --format csv --out items.csv"),
    "schema": ("evalkit schema > suite.schema.json",
               "evalkit schema --out .vscode/evalkit-suite.schema.json"),
    "plugins": ("evalkit plugins", "evalkit plugins --json plugins.json"),
    "view": ("evalkit view", "evalkit view --store runs/evalkit.db --rubric rubrics/classifier_quality.yaml",
             "evalkit view --read-only --host 0.0.0.0 --port 8765"),
    "labels": ("evalkit labels export --format calibration --rubric rubrics/classifier_quality.yaml --out labels.jsonl",
               "evalkit labels export --format dpo --out preferences.jsonl"),
}
"""Per command: example command lines. A command missing here shows ``evalkit NAME --help``."""


def examples_epilog(command: str) -> str:
    """Return the examples block of ``evalkit COMMAND --help``."""
    examples = COMMAND_EXAMPLES.get(command, (f"evalkit {command} --help",))
    return "\n".join(["examples:", *(f"  {example}" for example in examples)])


def add_examples(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give every registered command an examples epilog and, if missing, a description."""
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for name, parser in subparsers.choices.items():
        parser.epilog = examples_epilog(name) + (f"\n\n{parser.epilog}" if parser.epilog else "")
        if parser.formatter_class is argparse.HelpFormatter:
            parser.formatter_class = argparse.RawDescriptionHelpFormatter
        if not parser.description and helps.get(name):
            text = str(helps[name])
            parser.description = f"{text[:1].upper()}{text[1:]}."
