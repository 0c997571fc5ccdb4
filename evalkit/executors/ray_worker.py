"""The body of one Ray actor of the Ray executor: it holds backends and runs the units it is sent.

An actor generates chunks of conversations (:meth:`EvalWorker.generate`, one backend
``generate`` call per chunk, as a local run batches it) and runs any other work unit
handed to it as a module-level function (:meth:`EvalWorker.call`: a benchmark shard, say),
which receives the actor's backends. Backends are created on first use and kept, so a
model loads once per actor whatever the units. What each backend reported about a chunk
(its ``last_usage``: tokens and time per conversation) travels back with the chunk, and
an ``openai_server`` backend's fleet report (what each endpoint did) can be asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from evalkit.executors import ChunkUsage, Conversation
from evalkit.models.backend import Backend, ModelVariant, create_backend
from evalkit.suite.config import GenerationConfig


class EvalWorker:
    """The body of one Ray actor: it holds backends and runs the units it is sent."""

    def __init__(self, threads: int) -> None:
        """Limit torch to the actor's CPUs; backends are created on first use."""
        try:
            import torch

            torch.set_num_threads(max(1, threads))
        except ImportError:  # a worker for openai_server candidates needs no torch
            pass
        self._backends: dict[str, Backend] = {}

    def backend(self, name: str) -> Backend:
        """Return the actor's backend of this name, creating it on first use."""
        if name not in self._backends:
            self._backends[name] = create_backend(name)
        return self._backends[name]

    def generate(self, backend: str, variant: ModelVariant, chunks: Sequence[Sequence[Conversation]],
                 settings: GenerationConfig) -> list[tuple[list[tuple[str, str]], ChunkUsage]]:
        """Generate each chunk as one ``generate`` call (as a local run batches it).

        Returns:
            Per chunk, (rendered prompt, completion) per conversation, in order, and what
            generating the chunk took (wall time, the backend's per-conversation usage).
        """
        generator = self.backend(backend)
        done: list[tuple[list[tuple[str, str]], ChunkUsage]] = []
        for chunk in chunks:
            started = time.perf_counter()
            completions = generator.generate(variant, list(chunk), settings)
            seconds = time.perf_counter() - started
            reported = getattr(generator, "last_usage", None)
            usage = ChunkUsage(seconds, list(reported) if isinstance(reported, list) else None)
            done.append(([(generator.render_prompt(variant, c), text)
                          for c, text in zip(chunk, completions, strict=True)], usage))
        return done

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run one work unit: ``function(backend_of, *args)``, where ``backend_of(name)`` is :meth:`backend`."""
        return function(self.backend, *args)

    def fleet_reports(self) -> dict[str, list[dict[str, Any]]]:
        """Return what each endpoint of the actor's fleets did (empty without an ``openai_server`` fleet)."""
        reports = getattr(self._backends.get("openai_server"), "fleet_reports", None)
        return reports() if callable(reports) else {}

    def pid(self) -> int:
        """Return the actor's process id (tests use it to find the process)."""
        return os.getpid()

    def close(self) -> None:
        """Free the backends' models."""
        for generator in self._backends.values():
            generator.close()
        self._backends.clear()
