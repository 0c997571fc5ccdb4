"""Benchmark shards on the run's Ray workers, merged into exactly a local run's outcome.

When a run has an executor (:mod:`evalkit.executors`), the benchmarks stage scores a
candidate's benchmark there instead of on the driver:

* **MMLU** (the bundled tasks) is cut into *question ranges*: consecutive runs of the
  task's ``data.jsonl``, in its order (subject by subject), balanced by question count,
  at most two per worker. Each shard is its own lm-eval task: the same YAML (prompt,
  choices, metric) over its lines, whose few-shot prefixes are already rendered in, so
  every question is shown and scored as in the whole task. The worker writes the shard's
  task directory itself (a worker need not see the driver's ``$EVALKIT_HOME``).
* **Any other lm-eval task** is one unit, evaluated whole on a worker: its aggregation
  (groups, weighted means, corpus metrics) is lm-eval's own, so it is not cut.

A worker scores a unit with :class:`~evalkit.benchmarks.lm.EvalkitLM` on its own HF
backend (the one that generated, holding the model already) through
:func:`~evalkit.benchmarks.evaluate.evaluate_benchmark`. The driver merges MMLU shards
in the whole task's document order and aggregates with lm-eval's own functions
(``mean``, ``mean_stderr``) over the same list a local ``simple_evaluate`` aggregates,
so accuracy and stderr are the same floats, and per-subject figures are computed as
:func:`~evalkit.benchmarks.evaluate.collect_outcome` computes them. What can differ is
batch composition (a shard's requests are batched among themselves), which changes no
greedy log-likelihood comparison beyond float rounding: on float32 the tests find every
item equal; bf16 near-ties may flip, as generation's may.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import yaml
from filelock import FileLock

from evalkit.benchmarks.evaluate import (
    BenchmarkOutcome,
    BenchmarkTask,
    evaluate_benchmark,
    mean_stderr,
    subject_scores,
)
from evalkit.benchmarks.spec import Formulation
from evalkit.benchmarks.tasks import task_yaml
from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.input_files import json_objects
from evalkit.files.safe_write import write_text
from evalkit.models.backend import Backend, ModelVariant
from evalkit.progress import Progress

if TYPE_CHECKING:
    from evalkit.executors import Executor

BackendOf = Callable[[str], Backend]
Record = dict[str, Any]
SHARDS_PER_WORKER = 2
"""MMLU shards per worker: two let a fast worker take a slow one's share."""


def task_records(task: BenchmarkTask) -> list[Record]:
    """Return an MMLU task's questions as its ``data.jsonl`` holds them, in lm-eval's document order."""
    assert task.include_path is not None and task.formulation is not None, "MMLU tasks only"
    data = task.include_path / "data.jsonl"
    return [record for _, record in json_objects(data, "reinstall evalkit", BenchmarkError)]


def split_ranges(count: int, shards: int) -> list[range]:
    """Cut ``count`` documents into at most ``shards`` consecutive ranges, sizes differing by at most one."""
    shards = max(1, min(shards, count))
    size, extra = divmod(count, shards)
    ranges, start = [], 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        ranges.append(range(start, end))
        start = end
    return ranges


def write_shard_task(task: BenchmarkTask, records: Sequence[Record]) -> BenchmarkTask:
    """Write (once) the lm-eval task of one MMLU shard under ``$EVALKIT_HOME`` and return it.

    The shard's name is a digest of the whole task's name and of its lines, so a shard
    is written once per machine and reused; the YAML is the whole task's but for its data.
    """
    assert task.formulation is not None, "MMLU tasks only"
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    digest = hashlib.sha256(f"{task.task_name}:{data}".encode()).hexdigest()[:12]
    name = f"{task.task_name}_shard_{digest}"
    directory = evalkit_home() / "benchmarks" / "tasks" / name
    config_file = directory / f"{name}.yaml"
    if not config_file.is_file():
        directory.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory.parent / f"{name}.lock")):
            if not config_file.is_file():
                directory.mkdir(exist_ok=True)
                data_file = write_text(directory / "data.jsonl", data)
                # The YAML goes last: a directory with a YAML is always complete.
                config = task_yaml(name, data_file, cast("Formulation", task.formulation))
                write_text(config_file, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return replace(task, task_name=name, include_path=directory)


def score_unit(backend_of: BackendOf, task: BenchmarkTask, variant: ModelVariant,
               records: Sequence[Record] | None) -> BenchmarkOutcome:
    """Score one unit on a worker: an MMLU shard (``records``) or a whole task (``records`` None)."""
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import EvalkitLM

    unit_task = write_shard_task(task, records) if records is not None else task
    backend: Any = backend_of("hf")  # the worker's HFBackend, holding the model generation loaded
    lm = EvalkitLM(backend, variant, batch_size=task.spec.batch_size)
    return evaluate_benchmark(unit_task, lm)


def worker_scoring_dtype(backend_of: BackendOf, requested: str) -> tuple[str, str]:
    """Return, on a worker, the dtype ``requested`` resolves to there and its device type."""
    # lm_eval and torch: loaded only when a benchmark scores
    from evalkit.benchmarks.lm import scoring_dtype

    backend: Any = backend_of("hf")
    device = backend.device
    return scoring_dtype(requested, device), str(device.type)


def ask_one_worker(executor: Executor, function: Callable[..., Any], *args: Any) -> Any:
    """Run one small unit on a worker and return its value."""
    answers: dict[int, Any] = {}
    executor.map_units(function, [args], answers.__setitem__, lambda _: "a benchmark's dtype query")
    return answers[0]


def merge_outcomes(task: BenchmarkTask, shards: Sequence[Sequence[Record]], outcomes: Sequence[BenchmarkOutcome],
                   seconds: float) -> BenchmarkOutcome:
    """Merge MMLU shard outcomes into the whole task's, as one ``simple_evaluate`` would report it.

    Items are laid out in the whole task's document order (shard by shard), the overall
    score and stderr come from lm-eval's own ``mean`` and ``mean_stderr`` over that list
    (lm-eval reports no stderr for a single item; evalkit's 0.0 stands in, as locally),
    and every subject's figures are computed as a local outcome computes them.

    Raises:
        BenchmarkError: a shard's outcome lacks one of its questions.
    """
    from lm_eval.api.metrics import mean
    from lm_eval.api.metrics import mean_stderr as lm_eval_mean_stderr

    items: dict[str, float] = {}
    by_subject: dict[str, list[float]] = {}
    for records, outcome in zip(shards, outcomes, strict=True):
        for record in records:
            item_id = str(record["id"])
            if item_id not in outcome.items:
                raise BenchmarkError(f"benchmark '{task.spec.task}': a shard came back without question {item_id}")
            items[item_id] = outcome.items[item_id]
            by_subject.setdefault(str(record["subject"]), []).append(outcome.items[item_id])
    values = list(items.values())
    if not values:
        raise BenchmarkError(f"task '{task.task_name}' produced no items")
    stderr = lm_eval_mean_stderr(values) if len(values) > 1 else mean_stderr(values)
    return BenchmarkOutcome(acc=float(mean(values)), stderr=float(stderr), metric=outcomes[0].metric, items=items,
                            subjects=subject_scores(by_subject), seconds=seconds)


def score_on_workers(executor: Executor, task: BenchmarkTask, variant: ModelVariant, label: str,
                     progress: Progress) -> tuple[BenchmarkOutcome, int]:
    """Score one candidate's benchmark on the executor's workers (see the module docstring).

    Returns:
        The merged outcome, and how many units (shards) it took.

    A shard whose worker dies is retried on another (the executor's rule); one that
    raises a :class:`~evalkit.errors.BenchmarkError` fails the run as a local one would.
    """
    started = time.perf_counter()
    if task.formulation is None:
        shards: list[list[Record]] = []
        payloads: list[tuple[Any, ...]] = [(task, variant, None)]
    else:
        records = task_records(task)
        shards = [records[r.start:r.stop] for r in split_ranges(len(records),
                                                                SHARDS_PER_WORKER * executor.worker_count())]
        payloads = [(task, variant, shard) for shard in shards]
    outcomes: dict[int, BenchmarkOutcome] = {}
    progress.start(f"{label}: {len(payloads)} shard(s) on {executor.worker_count()} worker(s)", len(payloads))

    def keep(index: int, outcome: BenchmarkOutcome) -> None:
        outcomes[index] = outcome
        progress.advance(1)

    executor.map_units(score_unit, payloads, keep,
                       lambda index: f"benchmark shard {index + 1}/{len(payloads)} of {label}")
    progress.finish()
    seconds = time.perf_counter() - started
    if not shards:
        return replace(outcomes[0], seconds=seconds), 1
    return merge_outcomes(task, shards, [outcomes[i] for i in range(len(shards))], seconds), len(shards)



class WorkerScoring:
    """The benchmarks stage's handle on the run's workers: dtype queries (once per dtype) and shard counts.

    Args:
        executor: the run's executor.
    """

    def __init__(self, executor: Executor) -> None:
        """Ask nothing yet; the first :meth:`dtype` call starts the workers if generation did not."""
        self.executor = executor
        self.shards = 0
        self._dtypes: dict[str, tuple[str, str]] = {}

    def dtype(self, requested: str) -> tuple[str, str]:
        """Return (dtype, device type) that ``requested`` resolves to on the workers."""
        if requested not in self._dtypes:
            self._dtypes[requested] = ask_one_worker(self.executor, worker_scoring_dtype, requested)
        return self._dtypes[requested]

    def score(self, task: BenchmarkTask, variant: ModelVariant, label: str, progress: Progress) -> BenchmarkOutcome:
        """Score one benchmark on the workers (:func:`score_on_workers`) and count its shards."""
        outcome, shards = score_on_workers(self.executor, task, variant, label, progress)
        self.shards += shards
        return outcome
