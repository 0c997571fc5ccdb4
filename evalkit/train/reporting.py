"""How training reports progress without touching the terminal.

Trainers call a :class:`TrainingReporter`; ``evalkit train`` and ``evalkit run`` adapt the
CLI's :class:`~evalkit.progress.Progress` (rich bars on a terminal, plain lines every 10% or
30 s without one) with :class:`ProgressReporter`; tests pass :class:`SilentReporter`.
"""

from __future__ import annotations

from typing import Any, Protocol

from evalkit.progress import Progress


class TrainingReporter(Protocol):
    """Receives training events."""

    def note(self, text: str) -> None:
        """Tell the user something (trainable parameters, lint warnings, the saved path)."""
        ...

    def start(self, label: str, total_steps: int) -> None:
        """Training of ``total_steps`` optimizer updates begins."""
        ...

    def step(self, step: int, loss: float | None) -> None:
        """Update ``step`` is done; ``loss`` is set when a training loss was logged at it.

        A step can be reported twice: once when it ends, once more when its loss is logged.
        """
        ...

    def finish(self) -> None:
        """Training is over."""
        ...


class SilentReporter:
    """A reporter that draws nothing and keeps notes and losses for inspection."""

    def __init__(self) -> None:
        """Start empty."""
        self.notes: list[str] = []
        self.losses: list[float] = []
        self.steps = 0

    def note(self, text: str) -> None:
        """Keep the note."""
        self.notes.append(text)

    def start(self, label: str, total_steps: int) -> None:
        """Ignore the start."""

    def step(self, step: int, loss: float | None) -> None:
        """Count the step and keep the loss."""
        self.steps = step
        if loss is not None:
            self.losses.append(loss)

    def finish(self) -> None:
        """Ignore the end."""


class ProgressReporter:
    """Adapts a run's :class:`~evalkit.progress.Progress` to a training reporter.

    Args:
        progress: where steps go (rich bars on a terminal, plain lines in CI).
        loss_step: with a value, the latest logged loss is also noted each time another
            such fraction of the steps is done (0.1: ten loss lines over a run).
    """

    def __init__(self, progress: Progress, loss_step: float | None = None) -> None:
        """Report to ``progress``."""
        self._progress = progress
        self._done = 0
        self._total = 0
        self._loss_step = loss_step
        self._loss_noted_at = 0

    def note(self, text: str) -> None:
        """Forward the note."""
        self._progress.note(text)

    def start(self, label: str, total_steps: int) -> None:
        """Open a bar of ``total_steps``."""
        self._done = self._loss_noted_at = 0
        self._total = total_steps
        self._progress.start(label, total_steps)

    def step(self, step: int, loss: float | None) -> None:
        """Advance the bar to ``step``; note the loss when another ``loss_step`` of the run is done."""
        self._progress.advance(step - self._done)
        self._done = step
        if loss is None or self._loss_step is None:
            return
        every = max(1, round(self._total * self._loss_step)) if self._total > 0 else 1
        if step - self._loss_noted_at >= every or (self._total > 0 and step >= self._total):
            self._loss_noted_at = step
            self._progress.note(f"step {step}/{self._total}: loss {loss:.4f}")

    def finish(self) -> None:
        """Close the bar."""
        self._progress.finish()


def reporter_callback(reporter: TrainingReporter, label: str) -> Any:
    """Return a transformers ``TrainerCallback`` that forwards steps and losses to ``reporter``."""
    from transformers import TrainerCallback

    class _ReporterCallback(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.start(label, int(state.max_steps))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                reporter.step(int(state.global_step), float(logs["loss"]))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.step(int(state.global_step), None)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            reporter.finish()

    return _ReporterCallback()
