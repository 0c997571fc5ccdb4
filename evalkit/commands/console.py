"""The terminal side of the CLI: a rich console and a rich-backed progress reporter."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=False)
error_console = Console(stderr=True)


class RichProgress:
    """Draws one progress bar per task on stderr; notes are printed above the bars."""

    def __init__(self) -> None:
        """Create the progress display (not started until the first task)."""
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
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
        self._task = int(self._progress.add_task(label, total=total))

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
        self._progress.console.print(f"[yellow]{text}[/yellow]")

    def close(self) -> None:
        """Stop drawing."""
        self._progress.stop()
