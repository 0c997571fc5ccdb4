"""How long work reports progress without the pipeline touching the terminal.

Stages call a :class:`Progress`; the CLI passes one that draws rich progress bars on a
terminal and :class:`PlainProgress` lines elsewhere (CI logs, pipes); tests and the
pytest plugin pass :class:`SilentProgress`.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol


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


def format_rate(done: int, total: int, elapsed: float) -> str:
    """Return ``done/total (pct%), rate items/s, ETA`` as one status text."""
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    rate = done / elapsed if elapsed > 0 else 0.0
    if rate > 0 and total:
        eta = f", ETA {_duration((total - done) / rate)}"
    else:
        eta = ", ETA –"
    return f"{done}/{total}{pct}, {rate:.2f} items/s, {_duration(elapsed)} elapsed{eta}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class PlainProgress:
    """Progress as plain lines, for CI logs and pipes: no bars, no cursor movement.

    A line is printed when a task starts and finishes, whenever another ``step`` of it
    (10%) is done, and at least every ``interval`` seconds while it runs, even when
    nothing advanced (a heartbeat thread calls :meth:`tick`). Each line has the same
    figures as the terminal bars: done/total, percent, items/s, elapsed and ETA.

    Args:
        write: where lines go (one call per line, without the newline).
        clock: monotonic seconds; injectable for tests.
        interval: the most seconds between two lines of a running task.
        step: the fraction of a task between two lines.
        heartbeat: run the background thread (tests call :meth:`tick` themselves).
    """

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
                 interval: float = 30.0, step: float = 0.1, heartbeat: bool = True) -> None:
        """Create the reporter; the heartbeat thread starts with the first task."""
        self._write = write
        self._clock = clock
        self._interval = interval
        self._step = step
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._label = ""
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._last_line = 0.0
        self._last_done = 0
        self._running = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, label: str, total: int) -> None:
        """Begin a task and print its first line."""
        with self._lock:
            self._label, self._total, self._done = label, total, 0
            self._started = self._last_line = self._clock()
            self._last_done = 0
            self._running = True
            self._emit()
        if self._heartbeat and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="evalkit-progress", daemon=True)
            self._thread.start()

    def advance(self, units: int) -> None:
        """Count ``units`` more; print when another step is done or the interval passed."""
        with self._lock:
            self._done += units
            step_units = max(1, round(self._total * self._step)) if self._total else 0
            if step_units and self._done - self._last_done >= step_units:
                self._emit()
            else:
                self._due()

    def tick(self) -> None:
        """Print a line if the running task has been quiet for ``interval`` seconds."""
        with self._lock:
            self._due()

    def finish(self) -> None:
        """Print the task's last line."""
        with self._lock:
            if self._running:
                self._done = max(self._done, self._total)
                self._emit(final=True)
                self._running = False

    def note(self, text: str) -> None:
        """Print a note as its own line."""
        with self._lock:
            self._write(f"note: {text}")

    def close(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _due(self) -> None:
        if self._running and self._clock() - self._last_line >= self._interval:
            self._emit()

    def _emit(self, final: bool = False) -> None:
        now = self._clock()
        status = format_rate(self._done, self._total, now - self._started)
        self._write(f"{self._label}: {'done ' if final else ''}{status}")
        self._last_line, self._last_done = now, self._done

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()


# tqdm(iterable, desc, total, leave, file, ncols, mininterval, maxinterval, miniters, ascii, disable, ...)
_TQDM_DISABLE_POSITION = 10


@contextlib.contextmanager
def library_bars_silenced() -> Iterator[None]:
    """Turn off every library's progress bars for the block, then restore them: the one place that does.

    evalkit draws its own progress while it runs (and plain lines when not on a
    terminal), so a library's bar ("Loading weights", lm-eval's "Tokenizing inputs",
    datasets' and huggingface_hub's downloads) would only repeat it, or fill a CI log. Every
    tqdm bar made in the block is created disabled, whatever its caller passed (these
    libraries all draw through tqdm, some with ``disable=False`` spelled out, and a
    library first imported inside the block reads no setting of ours); transformers',
    datasets' and huggingface_hub's own switches are turned off too when they are loaded.
    A user's process keeps its bars outside evalkit's calls.
    """
    restore: list[Callable[[], None]] = []
    import tqdm.std

    bar_init = tqdm.std.tqdm.__init__

    @functools.wraps(bar_init)
    def disabled_bar(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > _TQDM_DISABLE_POSITION:  # disable given positionally (tqdm's 11th argument)
            args = (*args[:_TQDM_DISABLE_POSITION], True, *args[_TQDM_DISABLE_POSITION + 1:])
        else:
            kwargs["disable"] = True
        bar_init(self, *args, **kwargs)

    tqdm.std.tqdm.__init__ = disabled_bar  # type: ignore[method-assign]
    restore.append(lambda: setattr(tqdm.std.tqdm, "__init__", bar_init))
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None and transformers_logging.is_progress_bar_enabled():
        transformers_logging.disable_progress_bar()
        restore.append(transformers_logging.enable_progress_bar)
    datasets = sys.modules.get("datasets")
    if datasets is not None and hasattr(datasets, "is_progress_bar_enabled") and datasets.is_progress_bar_enabled():
        datasets.disable_progress_bars()
        restore.append(datasets.enable_progress_bars)
    hub_utils = sys.modules.get("huggingface_hub.utils")
    if hub_utils is not None and not hub_utils.are_progress_bars_disabled():
        hub_utils.disable_progress_bars()
        restore.append(hub_utils.enable_progress_bars)
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()
