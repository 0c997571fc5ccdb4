"""One meaning of ``--json`` across commands: ``--json FILE`` writes the result as JSON to FILE.

``-`` (or a bare ``--json``) writes it to stdout instead of the tables; a file is written
whole or not at all (:func:`evalkit.files.safe_write.write_text`), and the tables still print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from evalkit.files.safe_write import json_text, write_text

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
