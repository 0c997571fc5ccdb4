"""The SQLite run store: round trips, migrations, concurrent writers, the cache's keys."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from evalkit.checks import Score
from evalkit.comparison.result import Comparison
from evalkit.errors import StoreError
from evalkit.record.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CachedGeneration,
    RunStore,
    default_store_path,
    generation_key,
)
from evalkit.suite.config import GenerationConfig

REPO = Path(__file__).resolve().parents[1]


def sample_run(run_id: str = "20261128-100000", items: int = 5) -> RunResult:
    identity = CandidateIdentity(model_source="smollm2-135m-instruct", model_fingerprint="f" * 64,
                                 adapter="adapters/x", adapter_hash="a" * 64, backend="hf", prompt_hash="p" * 64)
    lora = CandidateResult(name="lora", identity=identity, seconds=1.5)
    for index in range(items):
        lora.items.append(ItemResult(
            item_id=str(index + 1), fields={"input": f"message {index}", "nested": {"k": [1, 2]}},
            prompt=f"<|im_start|>user\nmessage {index}", expected='{"a": 1}', prediction='{"a": 1}' if index else "x",
            scores={"exact_match": Score(1.0 if index else 0.0, "" if index else "differs"),
                    "judge.quality.format": Score(4.0, "clear JSON, ünïcode reasoning")},
        ))
    lora.item_values["mmlu_mini"] = {"anatomy/0": 1.0, "anatomy/1": 0.0}
    skipped = CandidateResult(name="merged", status="skipped", message="merged model not found")
    return RunResult(
        run_id=run_id, suite_name="classifier", suite_path=str(REPO / "suites" / "classifier.yaml"),
        baseline="lora", candidates=[lora, skipped], started_at="2026-11-28T10:00:00+00:00",
        finished_at="2026-11-28T10:05:00+00:00", dataset_hash="d" * 64, evalkit_version="0.1.0",
        command="evalkit run suites/classifier.yaml", sections={"benchmarks": {"lora": {"mmlu_mini": {"acc": 0.5}}}},
        warnings=["judge not calibrated"],
    )


def test_run_round_trips(tmp_path: Path) -> None:
    run = sample_run()
    with RunStore(tmp_path / "store.db") as store:
        assert store.save_run(run) == run.run_id
        loaded = store.load_run(run.run_id)
        (record,) = store.list_runs("classifier")
    assert loaded == run
    assert record.git_commit is None or len(record.git_commit) == 40
    assert record.candidates["lora"] is not None and record.candidates["lora"]["adapter_hash"] == "a" * 64
    assert record.candidates["merged"] is None


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_run_summaries_equal_run_summary_without_loading_items(tmp_path: Path) -> None:
    older, newer = sample_run("r1"), sample_run("r2", items=3)
    newer.started_at = "2026-11-29T10:00:00+00:00"
    with RunStore(tmp_path / "store.db") as store:
        store.save_run(older)
        store.save_run(newer)
        summaries = store.run_summaries("classifier")
        before_newer = store.run_summaries("classifier", before="r2")
    expected = [json.loads(json.dumps(run.summary(), default=str)) for run in (older, newer)]
    assert rounded(summaries) == rounded(expected)
    assert [s["run_id"] for s in before_newer] == ["r1"]


def test_store_is_wal_and_current_schema(tmp_path: Path) -> None:
    with RunStore(tmp_path / "store.db") as store:
        assert store.schema_version == SCHEMA_VERSION
    connection = sqlite3.connect(tmp_path / "store.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_run_id_gets_a_suffix_not_an_overwrite(tmp_path: Path) -> None:
    first, second = sample_run(), sample_run(items=3)
    second.sections["comparison"] = Comparison(baseline="", baseline_run_id=second.run_id,
                                               candidate_run_id=second.run_id).to_dict()
    with RunStore(tmp_path / "store.db") as store:
        store.save_run(first)
        new_id = store.save_run(second)
        assert new_id == f"{first.run_id}-2" == second.run_id
        assert second.sections["comparison"]["candidate_run_id"] == new_id
        assert len(store.load_run(first.run_id).candidates[0].items) == 5
        assert len(store.load_run(new_id).candidates[0].items) == 3


def test_history_points_and_thresholds(tmp_path: Path) -> None:
    from evalkit.comparison.result import ThresholdPolicy

    with RunStore(tmp_path / "store.db") as store:
        store.save_run(sample_run("r1"), policy=ThresholdPolicy(default="2pt", per_metric={"mmlu_mini": "5%"}))
        points = {(p.candidate, p.metric): (p.value, p.n) for p in store.metric_history("classifier")}
        policy = store.thresholds("r1")
    assert points[("lora", "exact_match")] == (pytest.approx(0.8), 5)
    assert points[("lora", "mmlu_mini")] == (pytest.approx(0.5), 2)
    assert policy.threshold_text("mmlu_mini") == "5%" and policy.default == "2pt"


def test_unknown_run_and_unusable_files(tmp_path: Path) -> None:
    with RunStore(tmp_path / "store.db") as store, pytest.raises(StoreError, match="no run 'nope'"):
        store.load_run("nope")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable evalkit run store"):
        RunStore(garbage)
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this evalkit"):
        RunStore(newer)


def test_default_store_path_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EVALKIT_STORE")
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "evalkit.db"
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / "elsewhere.db"))
    assert default_store_path() == tmp_path / "elsewhere.db"


def test_migration_from_schema_v1(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    connection = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](connection)  # the first schema, as the first release wrote it
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO runs (run_id, suite, suite_path, baseline, started_at, finished_at, sections_json)"
        " VALUES ('old', 'classifier', '', 'lora', '2026-01-01T00:00:00+00:00', '', '{}')")
    connection.execute("INSERT INTO candidates (run_id, name, position, status) VALUES ('old', 'lora', 0, 'ok')")
    for index, value in enumerate([1.0, 0.0, 1.0, 1.0]):
        connection.execute(
            "INSERT INTO item_results VALUES ('old', 'lora', ?, ?, '{}', 'p', 'e', 'x', ?)",
            (index, f"i{index}", f'{{"exact_match": [{value}, ""]}}'))
    connection.execute("INSERT INTO item_values VALUES ('old', 'lora', 'mmlu_mini', 'anatomy/0', 1.0)")
    connection.execute("INSERT INTO generation_cache VALUES ('k', 'prompt', 'completion', 'now')")
    connection.close()

    with RunStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        old = store.load_run("old")
        assert old.candidates[0].values("exact_match") == {"i0": 1.0, "i1": 0.0, "i2": 1.0, "i3": 1.0}
        history = {(p.metric, p.value) for p in store.metric_history("classifier")}
        assert history == {("exact_match", 0.75), ("mmlu_mini", 1.0)}
        assert store.cache.get_many(["k"]) == {"k": CachedGeneration("prompt", "completion")}
        assert store.run_summaries("classifier")[0]["run_id"] == "old"
        store.save_run(sample_run("new"))
        assert [r.run_id for r in store.list_runs("classifier")] == ["old", "new"]


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import sample_run
    from evalkit.store import CachedGeneration, RunStore

    writer = int(sys.argv[1])
    with RunStore(sys.argv[2]) as store:
        for number in range(int(sys.argv[3])):
            # The same ids in every process: collisions must become suffixes, never losses.
            store.save_run(sample_run(f"run-{{number}}", items=200))
            store.cache.put_many({{f"w{{writer}}-{{number}}-{{k}}": CachedGeneration("p", "c") for k in range(50)}})
    print("done", writer)
""")


def test_four_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path, runs_each = tmp_path / "shared.db", 12
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(Path(__file__).parent)))
    writers = [subprocess.Popen([sys.executable, str(script), str(n), str(path), str(runs_each)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    outputs = [w.communicate(timeout=240) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err.lower() and "done" in out
    with RunStore(path) as store:
        assert store.count_runs() == 4 * runs_each
        assert len(store.cache) == 4 * runs_each * 50
        ids = [r.run_id for r in store.list_runs()]
        assert len(set(ids)) == len(ids)
        assert all(len(store.load_run(i).candidates[0].items) == 200 for i in ids[:: len(ids) // 6])
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_generation_key_changes_with_every_component() -> None:
    base = {"model_fingerprint": "m", "prompt_format": "t", "adapter_hash": None, "backend": "hf",
            "runtime": {"device": "cpu", "dtype": "float32"}, "options": {},
            "messages": [{"role": "user", "content": "hi"}]}
    settings = GenerationConfig(max_new_tokens=32, temperature=0.0, batch_size=8)
    key = generation_key(**base, settings=settings)  # type: ignore[arg-type]
    assert key == generation_key(**base, settings=replace_settings(settings, batch_size=64))  # type: ignore[arg-type]
    variants = [("model_fingerprint", "m2"), ("prompt_format", "t2"), ("adapter_hash", "a"), ("backend", "vllm"),
                ("runtime", {"device": "cpu", "dtype": "bfloat16"}), ("runtime", {"device": "cuda", "dtype": "float32"}),
                ("runtime", {"served": {"id": "m", "root": "/w"}}), ("options", {"base_url": "x"}),
                ("messages", [{"role": "user", "content": "hi "}])]
    keys = {generation_key(**{**base, name: value}, settings=settings) for name, value in variants}  # type: ignore[arg-type]
    keys |= {generation_key(**base, settings=replace_settings(settings, max_new_tokens=33)),  # type: ignore[arg-type]
             generation_key(**base, settings=replace_settings(settings, temperature=0.7))}  # type: ignore[arg-type]
    assert key not in keys and len(keys) == len(variants) + 2


def replace_settings(settings: GenerationConfig, **changes: object) -> GenerationConfig:
    return settings.model_copy(update=changes)


def test_cache_put_and_get(tmp_path: Path) -> None:
    with RunStore(tmp_path / "store.db") as store:
        store.cache.put_many({f"k{i}": CachedGeneration(f"p{i}", f"c{i}") for i in range(1200)})
        found = store.cache.get_many([f"k{i}" for i in range(0, 1300, 7)])
    assert len(found) == len(range(0, 1200, 7))
    assert found["k7"] == CachedGeneration("p7", "c7")

