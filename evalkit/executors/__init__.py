"""Where generation runs: in this process (the default), or on a Ray cluster.

An executor takes over the generation step of :func:`evalkit.runner.evaluate_candidate`
for the candidates it :meth:`~Executor.runs`. The runner cuts a candidate's items into
*chunks* (``generation.batch_size`` items each, in the order a local run batches them)
and leaves out the chunks the generation cache already holds; the executor groups
chunks into work units, generates them wherever it likes, and hands every finished
chunk back on the driver's thread (``on_chunk``), where the runner alone writes the
store. A chunk is batched exactly as in a local run, so results are the same item for
item, and a run that stops resumes from the cache at the first unfinished unit. Each
chunk comes back with what generating it took (:class:`ChunkUsage`), which the runner
meters as it meters a local chunk.

Other work (a benchmark's shards, :mod:`evalkit.benchmarks.stage`) goes through
:meth:`~Executor.map_units`: one module-level function called on an actor per payload,
with the actor's backends, so the same actors (and the models they loaded) serve it.

Contract::

    executor.runs(backend, options) -> bool
    executor.generate(backend, variant, chunks, settings, on_chunk) -> None
        on_chunk(chunk_index, [(prompt, completion), ...], ChunkUsage) for every chunk, any order
    executor.map_units(function, payloads, on_result, describe) -> None
        function(backend_of, *payload) on an actor; on_result(index, value) for each, any order
    executor.worker_count() -> int     actors the executor runs
    executor.fleet_reports() -> dict   what the actors' endpoint fleets did, merged
    executor.notes() -> list[str]      things the run's reader must know (retries)
    executor.summary() -> dict         the run's ``executor`` section
    executor.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.models.backend import ModelVariant
    from evalkit.suite.config import ExecutorConfig, GenerationConfig, SuiteConfig

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class ChunkUsage:
    """What generating one chunk took on a worker, carried back with its completions.

    Attributes:
        seconds: wall time of the chunk's ``generate`` call on the worker.
        last_usage: the backend's ``last_usage`` after the call (one
            :class:`~evalkit.usage.stage.GenerationUsage` per conversation), None when it has none.
            Named as the backend attribute, so :meth:`evalkit.usage.stage.UsageMeter.record`
            reads it as it reads a local backend.
    """

    seconds: float
    last_usage: list[Any] | None


ChunkCallback = Callable[[int, list[tuple[str, str]], ChunkUsage], None]
UnitFunction = Callable[..., Any]


class Executor(Protocol):
    """Generates chunks of conversations somewhere else; see the module docstring."""

    def runs(self, backend: str, options: Mapping[str, Any]) -> bool:
        """Whether this executor generates for a candidate of this backend and options."""
        ...

    def generate(self, backend: str, variant: ModelVariant, chunks: Sequence[Sequence[Conversation]],
                 settings: GenerationConfig, on_chunk: ChunkCallback) -> None:
        """Generate every chunk and hand each back through ``on_chunk`` as it finishes."""
        ...

    def map_units(self, function: UnitFunction, payloads: Sequence[tuple[Any, ...]],
                  on_result: Callable[[int, Any], None], describe: Callable[[int], str]) -> None:
        """Call ``function(backend_of, *payload)`` on the workers, one unit per payload.

        ``on_result(index, value)`` runs on the driver's thread as each unit finishes;
        ``describe(index)`` names a unit in retry notes and errors.
        """
        ...

    def worker_count(self) -> int:
        """Return how many workers run units at once."""
        ...

    def fleet_reports(self) -> dict[str, list[dict[str, Any]]]:
        """Return what the workers' endpoint fleets did, per API model name, merged over workers."""
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

    from evalkit.suite.config import ExecutorConfig, RayExecutorConfig, load_suite

    suite = load_suite(suite_path)
    current = suite.executor.ray if suite.executor is not None and suite.executor.ray is not None else None
    settings = current.model_dump() if current is not None else {}
    try:
        ray = RayExecutorConfig.model_validate({**settings, "address": address})
    except ValidationError as exc:
        raise ConfigError(f"--ray {address}: {exc.errors()[0]['msg']}") from None
    suite.executor = ExecutorConfig(ray=ray)
    return suite
