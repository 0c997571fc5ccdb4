"""One codec for a run's written form: what is written is what is read, and damage names its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import DataError
from evalkit.record.run_dir import load_run_dir, write_run
from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run


def _written(tmp_path: Path) -> Path:
    run = synthetic_run(12, seed=3)
    return write_run(run, tmp_path)


def test_a_written_run_reads_back_equal_from_its_directory_and_from_the_store(tmp_path: Path) -> None:
    run = synthetic_run(12, seed=3)
    directory = write_run(run, tmp_path / "runs")
    again = load_run_dir(directory)
    written = json.loads((directory / "summary.json").read_text())
    read = again.summary()
    # Per-item benchmark values are not in a run directory, so their means are not either.
    for candidate_read, candidate_written in zip(read.pop("candidates"), written.pop("candidates"), strict=True):
        metrics_read, metrics_written = candidate_read.pop("metrics"), candidate_written.pop("metrics")
        assert candidate_read == candidate_written
        assert metrics_read == {k: v for k, v in metrics_written.items() if k in metrics_read}
        assert "exact_match" in metrics_read
    assert read == written
    assert [c.name for c in again.candidates] == [c.name for c in run.candidates]
    for before, after in zip(run.candidates, again.candidates, strict=True):
        assert after.identity == before.identity
        assert [(i.item_id, i.prediction, i.scores) for i in after.items] == \
            [(i.item_id, i.prediction, i.scores) for i in before.items]
    store = RunStore(tmp_path / "store.db")
    store.save_run(run)
    stored = store.run_summaries(run.suite_name)[-1]
    assert {k: v for k, v in stored.items() if k != "sections"} == \
        {k: v for k, v in json.loads(json.dumps(run.summary(), default=str)).items() if k != "sections"}
    assert store.load_run(run.run_id).candidates[0].identity == run.candidates[0].identity


def test_a_damaged_summary_is_refused_naming_the_field(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    summary = json.loads((directory / "summary.json").read_text())
    summary["candidates"][1]["seconds"] = "slow"
    (directory / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match=r"summary.json: field 'candidates.1.seconds': .*damaged"):
        load_run_dir(directory)


def test_an_identity_from_another_version_is_refused_as_such(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    summary = json.loads((directory / "summary.json").read_text())
    summary["candidates"][0]["identity"]["quantum_state"] = "x"
    (directory / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match="identity.quantum_state.*another evalkit version"):
        load_run_dir(directory)


def test_a_damaged_results_line_names_its_line_and_field(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    lines = (directory / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[4])
    del record["prediction"]
    lines[4] = json.dumps(record)
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"results.jsonl:5: field 'prediction': field required"):
        load_run_dir(directory)


def test_an_item_id_written_as_a_number_reads_as_text(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    lines = (directory / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["item_id"] = 7
    lines[0] = json.dumps(record)
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    run = load_run_dir(directory)
    assert run.candidate(record["candidate"]).items[0].item_id == "7"


def _rewrite_first_line(directory: Path, change: dict[str, object], drop: tuple[str, ...] = ()) -> dict[str, object]:
    lines = (directory / "results.jsonl").read_text().splitlines()
    record = {key: value for key, value in json.loads(lines[0]).items() if key not in drop} | change
    lines[0] = json.dumps(record)
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    return record


def test_a_results_line_without_its_candidate_is_refused_naming_the_field(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    _rewrite_first_line(directory, {}, drop=("candidate",))
    with pytest.raises(DataError, match=r"results.jsonl:1: field 'candidate': .*damaged"):
        load_run_dir(directory)


def test_a_results_line_is_the_item_it_was_written_from(tmp_path: Path) -> None:
    """The line holds the item's own fields (``fields`` as ``input``): nothing is lost or renamed."""
    run = synthetic_run(12, seed=3)
    directory = write_run(run, tmp_path)
    first = json.loads((directory / "results.jsonl").read_text().splitlines()[0])
    item = run.candidates[0].items[0]
    assert first["candidate"] == run.candidates[0].name
    assert first["input"] == item.fields and first["prediction"] == item.prediction
    assert load_run_dir(directory).candidates[0].items[0] == item


def test_a_results_line_without_input_or_prompt_reads_with_them_empty(tmp_path: Path) -> None:
    directory = _written(tmp_path)
    record = _rewrite_first_line(directory, {"a_newer_key": 1}, drop=("input", "prompt"))
    item = load_run_dir(directory).candidate(str(record["candidate"])).items[0]
    assert (item.fields, item.prompt, item.prediction) == ({}, "", record["prediction"])
