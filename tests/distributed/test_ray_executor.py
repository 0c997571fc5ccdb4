"""The Ray executor on a real local cluster and the tiny random model: equality, a killed worker, resume."""

from __future__ import annotations

from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.progress import SilentProgress
from evalkit.record.results import RunResult
from evalkit.suite.config import load_suite
from tests.conftest import CLASSIFIER_ITEMS, SuiteWriter

ITEMS = [dict(row, input=f"{row['input']} (order {n})") for n in range(3) for row in CLASSIFIER_ITEMS]
GENERATION = {"max_new_tokens": 8, "batch_size": 2}
CHUNKS = -(-len(ITEMS) // GENERATION["batch_size"])  # per candidate
RAY = {"ray": {"address": "local", "num_workers": 2, "cpus_per_worker": 1}}


def outputs(run: RunResult) -> list[tuple[str, str, str, str, dict[str, float]]]:
    """Every item of every candidate, in run order: what a local and a Ray run must share."""
    return [(c.name, i.item_id, i.prompt, i.prediction, {n: s.value for n, s in i.scores.items()})
            for c in run.candidates for i in c.items]


def two_candidates(tiny_model_dir: Any) -> list[dict[str, Any]]:
    return [{"name": "base", "model": str(tiny_model_dir)},
            {"name": "terse", "model": str(tiny_model_dir), "prompt": {"system": "Answer in JSON only."}}]


class KillWorkerAfterFirstChunk(SilentProgress):
    """Kills one Ray actor (ray.kill) as soon as the first chunk comes back, while others are in flight."""

    def __init__(self, ray: Any) -> None:
        super().__init__()
        self.ray = ray
        self.killed: list[str] = []

    def advance(self, units: int) -> None:
        if self.killed or units == 0:  # 0: the items the cache served, before any chunk
            return
        names = sorted(a["name"] for a in self.ray.util.list_named_actors(all_namespaces=True)
                       if "-worker-" in a["name"])
        self.ray.kill(self.ray.get_actor(names[0], namespace="evalkit"), no_restart=True)
        self.killed.append(names[0])


class StopAfterChunks(SilentProgress):
    """Interrupts the run (as Ctrl-C does) after a number of chunks came back."""

    def __init__(self, chunks: int) -> None:
        super().__init__()
        self.left = chunks

    def advance(self, units: int) -> None:
        if units == 0:
            return
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_a_ray_run_equals_the_local_run_item_for_item(
    ray_cluster: Any, make_suite: SuiteWriter, tiny_model_dir: Any, tmp_path: Any
) -> None:
    local_suite = make_suite(items=ITEMS, generation=GENERATION, candidates=two_candidates(tiny_model_dir))
    local = run_suite(local_suite, store=tmp_path / "local.db", write=False)
    ray_suite = make_suite(items=ITEMS, generation=GENERATION, candidates=two_candidates(tiny_model_dir),
                           executor=RAY)
    distributed = run_suite(ray_suite, store=tmp_path / "ray.db", write=False)
    assert outputs(distributed) == outputs(local)
    figures = distributed.sections["executor"]
    assert figures["kind"] == "ray" and figures["workers"] == 2
    assert figures["chunks"] == 2 * CHUNKS, "every chunk went through Ray"
    assert figures["retried_units"] == 0 and not distributed.warnings
    again = run_suite(ray_suite, store=tmp_path / "ray.db", write=False)
    assert again.sections["executor"]["chunks"] == 0, "a rerun is served from the driver's cache"
    assert outputs(again) == outputs(local)


def test_a_killed_worker_s_unit_is_retried_on_another(
    ray_cluster: Any, make_suite: SuiteWriter, tiny_model_dir: Any, tmp_path: Any
) -> None:
    local = run_suite(make_suite(items=ITEMS, generation=GENERATION), store=tmp_path / "local.db", write=False)
    progress = KillWorkerAfterFirstChunk(ray_cluster)
    suite = make_suite(items=ITEMS, generation=GENERATION, executor=RAY)
    run = run_suite(suite, store=tmp_path / "ray.db", write=False, progress=progress)
    assert progress.killed, "a worker was killed mid-run"
    assert run.sections["executor"]["retried_units"] >= 1
    assert run.sections["executor"]["replaced_workers"] >= 1
    assert any("died" in w and "retried on another worker" in w for w in run.warnings), run.warnings
    assert outputs(run) == outputs(local)


def test_an_interrupted_ray_run_resumes_by_unit_from_the_store(
    ray_cluster: Any, make_suite: SuiteWriter, tmp_path: Any
) -> None:
    suite = make_suite(items=ITEMS, generation=GENERATION, executor=RAY)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, store=tmp_path / "ray.db", write=False, progress=StopAfterChunks(3))
    resumed = run_suite(suite, store=tmp_path / "ray.db", write=False)
    assert resumed.sections["executor"]["chunks"] == CHUNKS - 3, "the three stored chunks are not redone"
    local = run_suite(make_suite(items=ITEMS, generation=GENERATION), store=tmp_path / "local.db", write=False)
    assert outputs(resumed) == outputs(local)


def test_without_ray_the_message_says_what_to_install(
    make_suite: SuiteWriter, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra sees
    suite = make_suite(generation=GENERATION, executor=RAY)
    with pytest.raises(BackendUnavailable, match=r"pip install 'evalkit\[ray\]'"):
        run_suite(suite, store=tmp_path / "runs.db", write=False)


@pytest.mark.parametrize(("executor", "message"), [
    ({"ray": {"address": "http://head"}}, "use local, auto, ray://HOST:PORT"),
    ({"ray": {"num_workers": 0}}, "num_workers"),
    ({"ray": {"gpus": 1}}, "gpus"),
    ({"dask": {}}, "dask"),
])
def test_a_bad_executor_section_is_named(make_suite: SuiteWriter, executor: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_suite(make_suite(executor=executor))


@pytest.mark.slow
def test_the_embedded_model_on_ray_equals_the_local_run(ray_cluster: Any, make_suite: SuiteWriter, tmp_path: Any) -> None:
    # The real SmolLM2 in float32: each Ray worker runs torch on 1 thread, the local run on
    # every core, and the greedy completions must still agree item for item.
    smol = [{"name": "smol", "model": "smollm2-135m-instruct", "dtype": "float32"}]
    generation = {"max_new_tokens": 16, "batch_size": 2}
    local = run_suite(make_suite(items=ITEMS[:6], generation=generation, candidates=smol),
                      store=tmp_path / "local.db", write=False)
    distributed = run_suite(make_suite(items=ITEMS[:6], generation=generation, candidates=smol, executor=RAY),
                            store=tmp_path / "ray.db", write=False)
    assert distributed.sections["executor"]["chunks"] == 3
    assert all(item.prediction for item in local.candidate("smol").items), "the model answered"
    assert outputs(distributed) == outputs(local)


def test_cli_ray_flag_runs_on_the_cluster_and_a_bad_address_is_exit_2(
    ray_cluster: Any, make_suite: SuiteWriter, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from evalkit.cli import main

    suite = make_suite(items=ITEMS[:4], generation=GENERATION)
    assert main(["run", str(suite), "--ray", "http://head:8265", "--store", str(tmp_path / "runs.db")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evalkit: error")]
    assert len(errors) == 1 and "--ray http://head:8265" in errors[0] and "ray://HOST:PORT" in errors[0]
    code = main(["run", str(suite), "--ray", "local", "--store", str(tmp_path / "runs.db"), "--out", str(tmp_path)])
    assert code in (0, 1), "the run completed (1 would be a bar verdict, not a failure)"
    (summary,) = tmp_path.rglob("summary.json")
    assert json.loads(summary.read_text())["sections"]["executor"]["chunks"] == 2
