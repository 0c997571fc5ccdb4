"""JSON Lines as the format defines them: one record per newline, nothing else ends a line.

``str.splitlines()`` also breaks at U+2028, U+2029, form feeds and other separators that
may sit raw inside a JSON string (``json.dumps(..., ensure_ascii=False)`` writes them), so
a reader built on it cuts such a record in two and reports the wrong line. Every JSONL
reader of evalkit's that holds a whole file as text splits it here.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["numbered_lines"]


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line) for each non-blank line of a JSONL text (CRLF line ends allowed)."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line
