"""The ``evalkit`` command line: parse, call the API, print, exit.

Exit codes (every command; :data:`EXIT_CODES` is the one list, shown by ``--help``)::

    0    success: the run passed every bar and nothing regressed
    1    a regression, or a bar that is unmet (failed, or inconclusive under ``inconclusive: fail``)
    2    a usage, config or input error: one line naming the file, line or field and what to do
    3    an internal error (a bug in evalkit): one line; ``--debug`` shows the traceback
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from evalkit.commands import COMMAND_MODULES
from evalkit.commands.console import add_examples
from evalkit.errors import EvalkitError
from evalkit.record.run_facts import evalkit_version

EXIT_OK, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """exit codes:
  0    passed: every bar met, no regression
  1    a regression, or an unmet bar (failed, or inconclusive when the suite says inconclusive: fail)
  2    usage, config or input error (one line naming the file, line or field, and what to do)
  3    internal error in evalkit (rerun with --debug for the traceback)
  130  interrupted"""
"""The exit-code table every ``--help`` ends with."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="evalkit", description="Evaluate and regression-test fine-tuned language models.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"evalkit {evalkit_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for entry in COMMAND_MODULES:
        module, _, function = entry.partition(":")
        getattr(importlib.import_module(module), function or "register")(subparsers)
    add_examples(subparsers)
    for command in subparsers.choices.values():
        # Every command's --help ends with the same exit-code table.
        if EXIT_CODES not in (command.epilog or ""):
            command.epilog = f"{command.epilog}\n\n{EXIT_CODES}" if command.epilog else EXIT_CODES
        if command.formatter_class is argparse.HelpFormatter:
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _one_line(text: str, limit: int = 600) -> str:
    """Fold a message onto one line (an error is one line on stderr), clipped to ``limit``."""
    folded = " ".join(str(text).split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (see :data:`EXIT_CODES`).

    An :class:`~evalkit.errors.EvalkitError` prints its one-line message and returns its
    code (2, or 1 for a regression); any other exception is a bug in evalkit: one line
    and exit 3, never 1, so a crash cannot read as a verdict. ``--debug`` re-raises.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except EvalkitError as exc:
        if args.debug:
            raise
        print(f"evalkit: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        print(f"evalkit: internal error: {type(exc).__name__}: {_one_line(str(exc), 300)} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
