"""Refuse a path that names something other than a regular file, before anything opens it.

Every option that names a file (the suite, a dataset, a train file, a rubric, a labels
file, a JSON schema, the mock backend's ``outputs:``) may be pointed at a FIFO, a device
or a directory. Opening a FIFO blocks until a writer appears (forever), reading
``/dev/zero`` never ends, and a directory fails with an error that reads like a crash.
:func:`refuse_non_regular_file` looks at the path with ``stat`` (which opens nothing)
and turns any of these into the caller's own error type, naming the file. A leaf module.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from evalkit.errors import DataError

__all__ = ["refuse_non_regular_file"]

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
