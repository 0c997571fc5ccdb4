"""Benchmark shards and usage on a real local Ray cluster, against the local run, on the tiny random model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.progress import SilentProgress
from evalkit.record.results import RunResult
from tests.conftest import SuiteWriter
from tests.distributed.test_ray_executor import ITEMS, RAY, outputs, two_candidates

GENERATION = {"max_new_tokens": 8, "batch_size": 2}
# Three subjects of three questions: 9 questions, cut into 4 shards for 2 workers. float32:
# the workers run torch on one thread and batch each shard apart, the driver on two.
BENCHMARKS = [{"task": "evalkit_mmlu_mini", "subjects": ["anatomy", "astronomy", "virology"],
               "limit_per_subject": 3, "dtype": "float32"}]


@pytest.fixture
def benchmark_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return a function pointing the benchmark results cache at a fresh file (each run scores afresh)."""
    import evalkit.benchmarks.evaluate as cache_module

    def use(name: str) -> Path:
        path = tmp_path / f"{name}.sqlite"
        monkeypatch.setattr(cache_module, "default_cache_path", lambda: path)
        return path

    return use


def benchmark_section(run: RunResult) -> dict[str, Any]:
    """The benchmarks section without wall times (the one thing a Ray run may differ in)."""
    return {name: {metric: {k: v for k, v in entry.items() if k != "seconds"} for metric, entry in entries.items()}
            for name, entries in run.sections["benchmarks"].items()}


def token_counts(run: RunResult) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per candidate, per item: (prompt tokens, completion tokens) the usage meter recorded."""
    return {name: {item: (u["prompt_tokens"], u["completion_tokens"]) for item, u in entry["per_item"].items()}
            for name, entry in run.sections["usage"].items()}


class KillWorkerAfterFirstShard(SilentProgress):
    """Kills one Ray actor as soon as the first benchmark shard comes back, with shards still to run."""

    def __init__(self, ray: Any) -> None:
        super().__init__()
        self.ray = ray
        self.killed: list[str] = []
        self.label = ""

    def start(self, label: str, total: int) -> None:
        self.label = label

    def advance(self, units: int) -> None:
        if self.killed or "shard" not in self.label:
            return
        names = sorted(a["name"] for a in self.ray.util.list_named_actors(all_namespaces=True)
                       if "-worker-" in a["name"])
        self.ray.kill(self.ray.get_actor(names[0], namespace="evalkit"), no_restart=True)
        self.killed.append(names[0])


def test_benchmark_shards_and_usage_on_ray_equal_the_local_run(
    ray_cluster: Any, make_suite: SuiteWriter, tiny_model_dir: Any, tmp_path: Path, benchmark_cache: Any
) -> None:
    candidates = two_candidates(tiny_model_dir)  # 'terse' is the same weights: scored once, `same_as`
    benchmark_cache("local")
    local = run_suite(make_suite(items=ITEMS[:6], generation=GENERATION, candidates=candidates,
                                 benchmarks=BENCHMARKS), store=tmp_path / "local.db", write=False)
    suite = make_suite(items=ITEMS[:6], generation=GENERATION, candidates=candidates, benchmarks=BENCHMARKS,
                       executor=RAY)
    ray_cache = benchmark_cache("ray")
    distributed = run_suite(suite, store=tmp_path / "ray.db", write=False)

    assert outputs(distributed) == outputs(local)
    assert benchmark_section(distributed) == benchmark_section(local), "accuracy, stderr, subjects, n: identical"
    assert distributed.sections["benchmarks"]["terse"]["evalkit_mmlu_mini"]["same_as"] == "base"
    for name in ("base", "terse"):
        assert distributed.candidate(name).item_values == local.candidate(name).item_values
        assert len(local.candidate(name).item_values["evalkit_mmlu_mini"]) == 9
    figures = distributed.sections["executor"]
    assert figures["benchmark_shards"] == 4, "9 questions in 4 shards for 2 workers, scored once for both"
    assert figures["retried_units"] == 0 and not distributed.warnings
    assert ray_cache.is_file(), "the driver wrote the results cache"

    # Usage: every item the workers generated is metered, with the local run's token counts.
    assert token_counts(distributed) == token_counts(local)
    for name in ("base", "terse"):
        usage = distributed.sections["usage"][name]
        assert usage["measured_items"] == 6 and usage["completion_tokens"] is not None
        assert usage["seconds"] > 0 and usage["latency_p50"] is not None

    # A worker killed while shards are in flight: its shard is retried on another, same section.
    # (Generation is served from the Ray run's store; only the benchmark is scored again.)
    benchmark_cache("killed")
    progress = KillWorkerAfterFirstShard(ray_cluster)
    killed = run_suite(suite, store=tmp_path / "ray.db", write=False, progress=progress)
    assert progress.killed, "a worker was killed mid-benchmark"
    assert killed.sections["executor"]["retried_units"] >= 1
    assert any("benchmark shard" in w and "retried on another worker" in w for w in killed.warnings), killed.warnings
    assert benchmark_section(killed) == benchmark_section(local)
