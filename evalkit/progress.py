"""How long work reports progress without the pipeline touching the terminal.

Stages call a :class:`Progress`; the CLI passes one that draws rich progress bars,
tests and the pytest plugin pass :class:`SilentProgress`.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress events from long-running stages."""

    def start(self, label: str, total: int) -> None:
        """A task of ``total`` units called ``label`` begins."""
        ...

    def advance(self, units: int) -> None:
        """``units`` more units of the current task are done."""
        ...

    def finish(self) -> None:
        """The current task is done."""
        ...

    def note(self, text: str) -> None:
        """Tell the user something (a skipped candidate, a warning)."""
        ...


class SilentProgress:
    """A Progress that reports nothing; notes are kept for inspection."""

    def __init__(self) -> None:
        """Start with no notes."""
        self.notes: list[str] = []

    def start(self, label: str, total: int) -> None:
        """Ignore the start of a task."""

    def advance(self, units: int) -> None:
        """Ignore progress."""

    def finish(self) -> None:
        """Ignore the end of a task."""

    def note(self, text: str) -> None:
        """Keep the note."""
        self.notes.append(text)
