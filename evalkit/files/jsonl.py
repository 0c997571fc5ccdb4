"""Reading JSON Lines: one function for every JSONL file evalkit reads.

A record ends at a newline and nowhere else. ``str.splitlines()`` also breaks at U+2028,
U+2029, form feeds and other separators that may sit raw inside a JSON string
(``json.dumps(..., ensure_ascii=False)`` writes them), so a reader built on it cuts such
a record in two and names the wrong line; iterating the open file splits at newlines
only, and streams, so a large file is never held whole. Every reader (datasets, run
directories, judge labels, mock scripts, bundled and cached MMLU) goes through
:func:`json_objects`, and each names its file, line and what to do in one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from evalkit.errors import DataError

__all__ = ["json_objects"]

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
