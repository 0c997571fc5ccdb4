"""Results as pandas DataFrames: RunResult.to_pandas, history and comparison frames, evalkit export."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.comparison.compare import compare_candidates
from evalkit.record.run_dir import write_run
from evalkit.testing.tiny_model import synthetic_run


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    return synthetic_run(12, candidates=("base", "lora"), judged_items=4, with_comparison=False)


def test_to_pandas_has_a_row_per_candidate_and_item_and_a_column_per_metric(run) -> None:  # type: ignore[no-untyped-def]
    frame = run.to_pandas()
    assert frame.index.names == ["candidate", "item_id"]
    base = run.candidate("base")
    task_rows = frame.loc["base"].dropna(subset=["prediction"])
    assert len(task_rows) == len(base.items)
    for metric, mean in base.metrics().items():
        assert metric in frame.columns
        assert frame.loc["base"][metric].mean() == pytest.approx(mean)
    first = base.items[0]
    assert frame.loc[("base", first.item_id), "prediction"] == first.prediction


def test_to_pandas_reasons_sit_beside_their_metric(run) -> None:  # type: ignore[no-untyped-def]
    frame = run.to_pandas(reasons=True)
    metric = next(iter(run.candidate("base").items[0].scores))
    columns = list(frame.columns)
    assert columns[columns.index(metric) + 1] == f"{metric}.reason"


def test_comparison_frame_has_one_row_per_candidate_and_metric(run) -> None:  # type: ignore[no-untyped-def]
    comparison = compare_candidates(run, baseline="base")
    frame = comparison.to_pandas()
    expected = {(c.candidate, m) for c in comparison.candidates.values() for m in c.metrics}
    assert set(frame.index) == expected
    assert {"delta", "ci_low", "ci_high", "p_value", "verdict"} <= set(frame.columns)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_writes_the_table(run, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / "no-store.db"))
    run_dir = write_run(run, tmp_path / "reports")
    out = tmp_path / f"items.{fmt}"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    read = {"csv": pd.read_csv, "parquet": pd.read_parquet,
            "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](out)
    from evalkit.commands.report import export_frame

    expected = export_frame(run)
    assert len(read) == len(expected) == len(run.to_pandas())
    assert list(read.columns) == list(expected.columns)


def test_export_without_a_known_suffix_is_a_usage_error(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = write_run(run, tmp_path / "reports")
    assert main(["export", str(run_dir), "--out", str(tmp_path / "items.xlsx")]) == 2
    assert not (tmp_path / "items.xlsx").exists()


def test_schema_is_the_suite_models_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"name", "dataset", "candidates", "benchmarks"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_schema_accepts_the_shipped_suite(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema
    import yaml

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    suite = yaml.safe_load(Path("suites/classifier.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(suite, schema)
    with pytest.raises(jsonschema.ValidationError, match="unexpected_key"):
        jsonschema.validate({**suite, "unexpected_key": 1}, schema)


def test_export_carries_the_run_id_identity_item_fields_and_reasons_and_prints_its_true_shape(
    make_suite, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    suite = make_suite()
    summary_file = tmp_path / "summary.json"
    assert main(["run", str(suite), "--limit", "2", "--json", str(summary_file)]) in (0, 1)
    summary = json.loads(summary_file.read_text())
    out = tmp_path / "items.csv"
    capsys.readouterr()
    assert main(["export", summary["run_id"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    read = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert f"wrote {len(read)} rows × {len(read.columns)} columns" in printed.replace("\n", " ")
    identity = summary["candidates"][0]["identity"]
    row = read.iloc[0]
    assert row["run_id"] == summary["run_id"] and row["candidate"] == "base"
    assert row["model_fingerprint"] == identity["model_fingerprint"] and row["prompt_hash"] == identity["prompt_hash"]
    assert "adapter_hash" in read.columns
    # The item's own fields, as the dataset has them (the classifier rows: instruction, input, output).
    results = [json.loads(line) for line in (Path(summary_file.parent) / "reports" / "tiny").glob("*/results.jsonl")
               .__next__().read_text().splitlines()]
    first = next(r for r in results if r["item_id"] == row["item_id"])
    assert {f"input.{name}" for name in first["input"]} <= set(read.columns)
    assert row["input.instruction"] == first["input"]["instruction"]
    # Each score's reason beside it, without asking.
    assert list(read.columns)[list(read.columns).index("exact_match") + 1] == "exact_match.reason"
    assert row["exact_match.reason"] == first["scores"]["exact_match"]["reason"]
