"""The benchmark results cache: an unchanged re-run scores nothing; any change scores afresh."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from evalkit.benchmarks.evaluate import (
    BenchmarkOutcome,
    SubjectScore,
    benchmark_cache,
    benchmark_key,
    prepare_benchmark,
)
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.runner import execute_suite
from evalkit.store.cache import JsonCache
from evalkit.suite.config import load_suite

BENCHMARK = {"task": "evalkit_mmlu_mini", "name": "mmlu_mini", "subjects": ["anatomy", "virology"], "limit_per_subject": 2}


@pytest.fixture
def scoring_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the real model's log-likelihood calls (each request batch lm-eval sends)."""
    calls: list[int] = []
    original = EvalkitLM.loglikelihood

    def counted(self: EvalkitLM, requests: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(requests))
        return original(self, requests, *args, **kwargs)

    monkeypatch.setattr(EvalkitLM, "loglikelihood", counted)
    return calls


def test_unchanged_rerun_does_not_call_the_model(
    make_suite: Any, tiny_model_dir: Path, scoring_calls: list[int], private_benchmark_cache: Path
) -> None:
    suite_file = make_suite(benchmarks=[BENCHMARK])
    first = execute_suite(load_suite(suite_file))
    assert sum(scoring_calls) == 4 * 4, "four questions of four choices each are scored the first time"
    assert "cached" not in first.sections["benchmarks"]["base"]["mmlu_mini"]
    scoring_calls.clear()
    second = execute_suite(load_suite(suite_file))
    assert scoring_calls == [], "an unchanged re-run must not score anything"
    entry = second.sections["benchmarks"]["base"]["mmlu_mini"]
    assert entry["cached"] is True
    assert entry["acc"] == first.sections["benchmarks"]["base"]["mmlu_mini"]["acc"]
    assert second.candidate("base").item_values["mmlu_mini"] == first.candidate("base").item_values["mmlu_mini"]
    with benchmark_cache(private_benchmark_cache) as cache:
        assert len(cache) == 1


def test_changed_questions_score_again(make_suite: Any, scoring_calls: list[int]) -> None:
    execute_suite(load_suite(make_suite(benchmarks=[BENCHMARK])))
    scoring_calls.clear()
    execute_suite(load_suite(make_suite(benchmarks=[dict(BENCHMARK, limit_per_subject=3)])))
    assert sum(scoring_calls) == 6 * 4


def _key(spec: dict[str, Any], **variant: Any) -> str:
    task = prepare_benchmark(BenchmarkSpec.model_validate(spec), Path("."))
    parts = {"model_fingerprint": "m" * 64, "adapter_hash": None, "dtype": "float32", "device": "cpu"} | variant
    return benchmark_key(task, **parts)


@pytest.mark.parametrize(
    ("spec", "variant"),
    [
        (dict(BENCHMARK, limit_per_subject=3), {}),
        (dict(BENCHMARK, subjects=["anatomy"]), {}),
        (dict(BENCHMARK, formulation="cloze"), {}),
        (dict(BENCHMARK, num_fewshot=1), {}),
        (BENCHMARK, {"model_fingerprint": "n" * 64}),
        (BENCHMARK, {"adapter_hash": "a" * 64}),
        (BENCHMARK, {"dtype": "bfloat16"}),
        (BENCHMARK, {"device": "cuda"}),
        (BENCHMARK, {"scorer": "evalkit-vllm"}),
    ],
)
def test_key_changes_with_what_is_scored(spec: dict[str, Any], variant: dict[str, Any]) -> None:
    assert _key(spec, **variant) != _key(BENCHMARK)


def test_key_ignores_batch_size() -> None:
    assert _key(dict(BENCHMARK, batch_size=4)) == _key(BENCHMARK)


def test_outcome_round_trips_and_a_bad_record_is_a_miss(tmp_path: Path) -> None:
    outcome = BenchmarkOutcome(acc=0.5, stderr=0.1, metric="acc", items={"anatomy/1": 1.0, "anatomy/2": 0.0},
                               subjects={"anatomy": SubjectScore(0.5, 0.5, 2)}, seconds=1.5)
    with benchmark_cache(tmp_path / "b.sqlite") as cache:
        cache.put("k", outcome)
        assert cache.get("k") == outcome
        assert cache.get("other") is None
    # A record of another shape (another evalkit version wrote it) is a miss, scored again.
    with JsonCache(dict[str, Any], tmp_path / "b.sqlite", "benchmark cache") as raw:
        raw.put("short", {"acc": 0.5})
        raw.put("no-items", dict(dataclasses.asdict(outcome), items=None))
    with benchmark_cache(tmp_path / "b.sqlite") as cache:
        assert cache.get("short") is None and cache.get("no-items") is None and cache.get("k") == outcome
