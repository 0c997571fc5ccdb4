"""The Ray executor: work units of a run evaluated by Ray actors, each holding its backend.

A suite asks for it with::

    executor:
      ray:
        address: auto          # local | auto | ray://head:10001 | head:6379
        num_workers: 4         # actors, one backend (one model copy) each
        cpus_per_worker: 1     # CPUs reserved per actor (its torch threads)
        gpus_per_worker: 1     # GPUs reserved per actor (TP x PP for a vLLM engine)

or ``evalkit run SUITE --ray ADDRESS``. A work unit is ``chunks_per_unit`` chunks of one
candidate's items (see :mod:`evalkit.executors`); units go to idle actors, results
stream back with ``ray.wait`` and are handed to the runner on the driver, which alone
writes the generation cache and the run. An actor that dies (killed, out of memory,
its node lost) is replaced and its unit retried on another actor, up to
``max_unit_retries`` times; each retry is a note in the run. An error a unit raises on
purpose (a model that does not load) fails the run as it would locally. Each chunk comes
back with its usage (:class:`~evalkit.executors.ChunkUsage`); an ``openai_server``
fleet's per-endpoint report is read from the actor after each of its units and summed
over actors (:meth:`RayExecutor.fleet_reports`). Other work (a benchmark's shards) goes
through :meth:`RayExecutor.map_units`, on the same actors, with the same retries.

Every node must see the model, adapter and data paths at the same place (a shared
file system) and have evalkit installed; ``address: local`` starts a one-machine
cluster for the run and stops it afterwards.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evalkit.errors import BackendUnavailable, EvalkitError, ModelError
from evalkit.executors import ChunkCallback, ChunkUsage, Conversation, UnitFunction
from evalkit.models.backend import Backend, ModelVariant, create_backend
from evalkit.record.run_facts import ExecutorSummary
from evalkit.suite.config import GenerationConfig, RayExecutorConfig

INSTALL_HINT = "pip install 'evalkit[ray]'"
NAMESPACE = "evalkit"
# Environment the driver passes on to its actors (offline switches, evalkit's home, vLLM settings).
FORWARDED_ENV_PREFIXES = ("HF_", "TRANSFORMERS_", "EVALKIT_", "VLLM_")


def import_ray() -> Any:
    """Import Ray, or say in one line what installs it.

    Raises:
        BackendUnavailable: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(f"the Ray executor needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class RayExecutor:
    """Runs work units on Ray actors; see the module docstring.

    Args:
        config: the suite's ``executor.ray`` section.
    """

    def __init__(self, config: RayExecutorConfig) -> None:
        """Check that Ray imports; the cluster is joined and actors started on first use."""
        self.ray = import_ray()
        self.config = config
        self.figures = ExecutorSummary(address=config.address, workers=config.num_workers)
        self._notes: list[str] = []
        self._workers: dict[int, Any] = {}
        self._spawned = 0
        self._names: dict[int, str] = {}
        self._actor_class: Any = None
        self._tag = uuid.uuid4().hex[:8]
        self._joined = False
        # Fleet reports per actor (slot, spawn number), refreshed after each of its units:
        # what an actor's fleet did survives the actor.
        self._fleets: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = {}
        self._spawn_of: dict[int, int] = {}

    def runs(self, backend: str, options: Mapping[str, Any]) -> bool:
        """Every candidate runs on the actors except ``serve: true`` ones (the server is the parallelism)."""
        return not (backend == "openai_server" and bool(options.get("serve")))

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                 "namespace": NAMESPACE}
        if self.config.address == "local":
            cpus = math.ceil(self.config.num_workers * self.config.cpus_per_worker)
            gpus = math.ceil(self.config.num_workers * self.config.gpus_per_worker)
            ray.init(num_cpus=cpus, num_gpus=gpus or None, **quiet)
        else:
            try:
                ray.init(address=self.config.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ModelError(f"executor.ray.address {self.config.address}: cannot join the Ray cluster "
                                 f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                                 "start it with `ray start --head` or fix the address") from None
        self._joined = True

    def _spawn(self, slot: int) -> None:
        """Start the actor for one worker slot (a fresh one after a death)."""
        self._spawned += 1
        self._spawn_of[slot] = self._spawned
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
        if self._actor_class is None:
            self._actor_class = self.ray.remote(EvalWorker)
        self._names[slot] = f"evalkit-{self._tag}-worker-{slot}-{self._spawned}"
        self._workers[slot] = self._actor_class.options(
            name=self._names[slot], namespace=NAMESPACE,
            num_cpus=self.config.cpus_per_worker, num_gpus=self.config.gpus_per_worker,
            max_restarts=0, runtime_env={"env_vars": env} if env else None,
        ).remote(max(1, int(self.config.cpus_per_worker)))

    def worker_names(self) -> list[str]:
        """Return the Ray names of the live actors (in the ``evalkit`` namespace)."""
        return [self._names[slot] for slot in sorted(self._workers)]

    def worker_count(self) -> int:
        """Return the number of actors (``num_workers``)."""
        return self.config.num_workers

    def generate(self, backend: str, variant: ModelVariant, chunks: Sequence[Sequence[Conversation]],
                 settings: GenerationConfig, on_chunk: ChunkCallback) -> None:
        """Cut ``chunks`` into units, run them on the actors, and hand back every chunk with its usage.

        Raises:
            ModelError: a unit's actors kept dying (more than ``max_unit_retries`` times).
            EvalkitError: a unit raised one (a model or adapter that does not load, ...).
        """
        if not chunks:
            return
        per_unit = self.config.chunks_per_unit
        units = [list(range(start, min(start + per_unit, len(chunks)))) for start in range(0, len(chunks), per_unit)]
        self.figures.units += len(units)
        self.figures.chunks += len(chunks)
        fleet = backend == "openai_server"

        def submit(worker: Any, unit: int) -> Any:
            return worker.generate.remote(backend, variant, [chunks[c] for c in units[unit]], settings)

        def done(unit: int, outputs: Any) -> None:
            for chunk_index, (generations, usage) in zip(units[unit], outputs, strict=True):
                on_chunk(chunk_index, generations, usage)

        source = variant.adapter_name or variant.model.source
        self._run(len(units), submit, done, lambda unit: f"work unit {unit + 1}/{len(units)} of '{source}'", fleet)

    def map_units(self, function: UnitFunction, payloads: Sequence[tuple[Any, ...]],
                  on_result: Callable[[int, Any], None], describe: Callable[[int], str]) -> None:
        """Run ``function(backend_of, *payload)`` on the actors, one unit per payload (a benchmark shard).

        Units go to idle actors and are retried on another when their actor dies, as
        generation units are; ``on_result`` runs on the driver as each finishes.

        Raises:
            ModelError: a unit's actors kept dying (more than ``max_unit_retries`` times).
            EvalkitError: a unit raised one (a benchmark task lm-eval cannot load, ...).
        """
        if not payloads:
            return
        self.figures.units += len(payloads)
        self._run(len(payloads), lambda worker, unit: worker.call.remote(function, *payloads[unit]),
                  on_result, describe, False)

    def _run(self, count: int, submit: Callable[[Any, int], Any], on_result: Callable[[int, Any], None],
             describe: Callable[[int], str], fleet: bool) -> None:
        """Send ``count`` units to idle actors, hand each result to ``on_result``, retry a dead actor's unit."""
        ray = self.ray
        self._connect()
        for slot in range(self.config.num_workers):
            if slot not in self._workers:
                self._spawn(slot)
        queue: deque[int] = deque(range(count))
        idle: deque[int] = deque(sorted(self._workers))
        retries = [0] * count
        running: dict[Any, tuple[int, int]] = {}
        while queue or running:
            while queue and idle:
                slot, unit = idle.popleft(), queue.popleft()
                running[submit(self._workers[slot], unit)] = (unit, slot)
            ready = ray.wait(list(running), num_returns=1)[0][0]
            unit, slot = running.pop(ready)
            try:
                output = ray.get(ready)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError) as exc:
                retries[unit] += 1
                reason = type(exc).__name__
                label = describe(unit)
                if retries[unit] > self.config.max_unit_retries:
                    raise ModelError(f"{label} lost its Ray worker {retries[unit]} times ({reason}); see the Ray "
                                     "logs, or raise executor.ray.max_unit_retries") from None
                self._notes.append(f"Ray worker {slot} died ({reason}) running {label}; "
                                   "the unit was retried on another worker")
                self.figures.retried_units += 1
                self.figures.replaced_workers += 1
                self._spawn(slot)
                queue.appendleft(unit)
                idle.append(slot)  # the replacement waits behind the workers already warm
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                if isinstance(cause, EvalkitError):
                    raise cause from None
                raise
            if fleet:
                self._refresh_fleet(slot)
            on_result(unit, output)
            idle.append(slot)

    def _refresh_fleet(self, slot: int) -> None:
        # The actor's fleet counts are cumulative: keep its latest, keyed by this actor's life.
        try:
            reports = self.ray.get(self._workers[slot].fleet_reports.remote(), timeout=60)
        except Exception:  # an actor that died just now keeps its last report
            return
        if reports:
            self._fleets[(slot, self._spawn_of[slot])] = reports

    def fleet_reports(self) -> dict[str, list[dict[str, Any]]]:
        """Return what the actors' endpoint fleets did, per API model name, summed over actors.

        Each actor checks and uses its own fleet; an endpoint's counts are added up over
        them, it is ``ejected`` when any actor left it out, and its ``last_error`` is the
        last one an actor saw.
        """
        merged: dict[str, dict[str, dict[str, Any]]] = {}
        for key in sorted(self._fleets):
            for model, endpoints in self._fleets[key].items():
                by_url = merged.setdefault(model, {})
                for endpoint in endpoints:
                    entry = by_url.setdefault(endpoint["url"], {**endpoint, "completed": 0, "failed": 0,
                                                                "ejected": False, "last_error": ""})
                    entry["completed"] += endpoint["completed"]
                    entry["failed"] += endpoint["failed"]
                    entry["ejected"] = entry["ejected"] or endpoint["ejected"]
                    entry["last_error"] = endpoint["last_error"] or entry["last_error"]
        return {model: list(by_url.values()) for model, by_url in merged.items()}

    def notes(self) -> list[str]:
        """Return the retries this run needed, one line each."""
        return list(self._notes)

    def summary(self) -> dict[str, Any]:
        """Return the figures of the run's ``executor`` section (the benchmarks stage adds its shards)."""
        return self.figures.model_dump(mode="json", exclude={"benchmark_shards"})

    def close(self) -> None:
        """Free the actors' models and stop them; leave the cluster when this executor joined it.

        A ``local`` cluster this executor started stops with it; a Ray session the caller
        had already opened (``ray.init`` in a notebook or a test) is left open.
        """
        ray = self.ray
        workers, self._workers = list(self._workers.values()), {}
        if workers and ray.is_initialized():
            try:
                ray.get([worker.close.remote() for worker in workers], timeout=60)
            except Exception:  # an actor that already died has nothing to free
                pass
            for worker in workers:
                ray.kill(worker)
        if self._joined and ray.is_initialized():
            ray.shutdown()
        self._joined = False


# The body of one Ray actor of the Ray executor: it holds backends and runs the units it is sent.
#
# An actor generates chunks of conversations (:meth:`EvalWorker.generate`, one backend
# ``generate`` call per chunk, as a local run batches it) and runs any other work unit
# handed to it as a module-level function (:meth:`EvalWorker.call`: a benchmark shard, say),
# which receives the actor's backends. Backends are created on first use and kept, so a
# model loads once per actor whatever the units. What each backend reported about a chunk
# (its ``last_usage``: tokens and time per conversation) travels back with the chunk, and
# an ``openai_server`` backend's fleet report (what each endpoint did) can be asked for.

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
