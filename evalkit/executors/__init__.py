"""Where generation runs: in this process (the default), or on a Ray cluster.

An executor takes over the generation step of :func:`evalkit.runner.evaluate_candidate`
for the candidates it :meth:`~Executor.runs`. The runner cuts a candidate's items into
*chunks* (``generation.batch_size`` items each, in the order a local run batches them)
and leaves out the chunks the generation cache already holds; the executor groups
chunks into work units, generates them wherever it likes, and hands every finished
chunk back on the driver's thread (``on_chunk``), where the runner alone writes the
store. A chunk is batched exactly as in a local run, so results are the same item for
item, and a run that stops resumes from the cache at the first unfinished unit.

Contract::

    executor.runs(backend, options) -> bool
    executor.generate(backend, variant, chunks, settings, on_chunk) -> None
        on_chunk(chunk_index, [(prompt, completion), ...]) for every chunk, any order
    executor.notes() -> list[str]      things the run's reader must know (retries)
    executor.summary() -> dict         the run's ``executor`` section
    executor.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from evalkit.config import ExecutorConfig, GenerationConfig, SuiteConfig
    from evalkit.models.backend import ModelVariant

Conversation = list[dict[str, str]]
ChunkCallback = Callable[[int, list[tuple[str, str]]], None]


class Executor(Protocol):
    """Generates chunks of conversations somewhere else; see the module docstring."""

    def runs(self, backend: str, options: Mapping[str, Any]) -> bool:
        """Whether this executor generates for a candidate of this backend and options."""
        ...

    def generate(self, backend: str, variant: ModelVariant, chunks: Sequence[Sequence[Conversation]],
                 settings: GenerationConfig, on_chunk: ChunkCallback) -> None:
        """Generate every chunk and hand each back through ``on_chunk`` as it finishes."""
        ...

    def notes(self) -> list[str]:
        """Return what the run's reader must know (units retried after a worker died)."""
        ...

    def summary(self) -> dict[str, Any]:
        """Return the figures recorded in the run's ``executor`` section."""
        ...

    def close(self) -> None:
        """Stop the workers (and the cluster, when this executor started it)."""
        ...


def open_executor(config: ExecutorConfig | None) -> Executor | None:
    """Return the executor a suite's ``executor:`` section asks for (None: generate here).

    Raises:
        BackendUnavailable: Ray is asked for but not installed; says what to install.
    """
    if config is None or config.ray is None:
        return None
    from evalkit.executors.ray_executor import RayExecutor

    return RayExecutor(config.ray)


def suite_on_ray(suite_path: str, address: str) -> SuiteConfig:
    """Load a suite and point its executor at a Ray cluster (``evalkit run --ray ADDRESS``).

    The suite's own ``executor.ray`` settings (workers, CPUs, GPUs) are kept; only the
    address is replaced, and a suite without the section gets the defaults.

    Raises:
        ConfigError: the suite does not load, or the address has no known form.
    """
    from pydantic import ValidationError

    from evalkit.config import ExecutorConfig, RayExecutorConfig, load_suite
    from evalkit.errors import ConfigError

    suite = load_suite(suite_path)
    current = suite.executor.ray if suite.executor is not None and suite.executor.ray is not None else None
    settings = current.model_dump() if current is not None else {}
    try:
        ray = RayExecutorConfig.model_validate({**settings, "address": address})
    except ValidationError as exc:
        raise ConfigError(f"--ray {address}: {exc.errors()[0]['msg']}") from None
    suite.executor = ExecutorConfig(ray=ray)
    return suite
