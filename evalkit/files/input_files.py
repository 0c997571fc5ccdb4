"""Refuse a path that names something other than a regular file, before anything opens it.

Every option that names a file (the suite, a dataset, a train file, a rubric, a labels
file, a JSON schema, the mock backend's ``outputs:``) may be pointed at a FIFO, a device
or a directory. Opening a FIFO blocks until a writer appears (forever), reading
``/dev/zero`` never ends, and a directory fails with an error that reads like a crash.
:func:`refuse_non_regular_file` looks at the path with ``stat`` (which opens nothing)
and turns any of these into the caller's own error type, naming the file. A leaf module.

:func:`json_objects` (at the end) is evalkit's one JSON Lines reader.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from evalkit.errors import DataError

__all__ = ["json_objects", "refuse_non_regular_file"]


_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_non_regular_file(path: Path, what: str, error: Callable[[str], Exception] = DataError) -> None:
    """Raise ``error`` when ``path`` exists and is not a regular file (symlinks are followed).

    A missing path passes: each caller says "not found" in its own words.

    Args:
        path: the path an option names.
        what: what the file is, for the message (``"dataset file"``, ``"rubric file"``).
        error: the exception type to raise (``DataError``, ``ConfigError``...).

    Raises:
        ``error``: ``PATH: WHAT is a FIFO (named pipe), not a regular file; ...``.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise error(f"{path}: {what} cannot be inspected ({exc.strerror or exc}); "
                    "check the path and its permissions") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    raise error(f"{path}: {what} is {kind}, not a regular file; name a regular file")


# Reading JSON Lines: one function for every JSONL file evalkit reads.
ErrorOf = Callable[[str], Exception]


def json_objects(path: Path, fix: str = "each line must be one JSON object",
                 error: ErrorOf = DataError) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line of a JSONL file, streaming.

    Args:
        path: the file (UTF-8; CRLF line ends allowed).
        fix: what the reader should do about a bad line, ending the message.
        error: the error type the caller's failures are (``DataError``, ``ConfigError``...).

    Raises:
        ``error``: a line is not JSON, or not a JSON object: ``PATH:LINE: what; fix``.
        OSError, UnicodeDecodeError: the file cannot be read (callers say what to do).
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); {fix}") from None
            if not isinstance(value, dict):
                raise error(f"{path}:{number}: expected a JSON object, got {type(value).__name__}; {fix}")
            yield number, value
