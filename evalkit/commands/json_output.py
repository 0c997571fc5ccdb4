"""One meaning of ``--json`` across commands: ``--json FILE`` writes the result as JSON to FILE.

``-`` (or a bare ``--json``) writes it to stdout instead of the tables; a file is written
whole or not at all (a temporary file renamed into place), and the tables still print.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

STDOUT = "-"


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--json [FILE]`` to a command: ``what`` names the result written."""
    parser.add_argument("--json", dest="json_out", metavar="FILE", nargs="?", const=STDOUT,
                        help=f"write {what} as JSON to FILE ('-' or no FILE: to stdout, instead of the tables)")


def emit_json(target: str | None, payload: Any) -> bool:
    """Write ``payload`` where ``--json`` said; return True when it went to stdout (skip the tables)."""
    if target is None:
        return False
    text = json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n"
    if target == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return False
