"""`evalkit run --from RUN`: the resolved suite every run records, and a rerun of exactly it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from evalkit.cli import main

# The make_suite fixture's type (tests/conftest.py). Not imported from there: with the report's
# and the view's conftest files also loaded, the name `conftest` is ambiguous.
SuiteWriter = Callable[..., Path]


def _run(args: list[str], out: Path) -> tuple[int, dict]:
    code = main([*args, "--json", str(out)])
    return code, json.loads(out.read_text()) if out.is_file() else {}


def _results(run_dir: str) -> list[tuple[str, str, str, dict]]:
    lines = [json.loads(line) for line in (Path(run_dir) / "results.jsonl").read_text().splitlines()]
    return [(row["candidate"], row["item_id"], row["prediction"],
             {name: score["value"] for name, score in row["scores"].items()}) for row in lines]


def test_a_run_records_its_resolved_suite_and_from_reruns_it_despite_an_edited_file(
    make_suite: SuiteWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite()
    code, first = _run(["run", str(suite), "--set", "generation.max_new_tokens=6", "--limit", "2"],
                       tmp_path / "first.json")
    assert code in (0, 1)
    resolved = first["sections"]["resolved_suite"]
    assert resolved["config"]["generation"]["max_new_tokens"] == 6          # the --set, applied
    assert resolved["config"]["generation"]["temperature"] == 0.0           # a default, filled in
    assert resolved["overrides"] == ["generation.max_new_tokens=6"] and resolved["limit"] == 2
    assert resolved["paths"]["dataset.path"] == str((tmp_path / "data" / "eval.jsonl").resolve())
    assert resolved["runtime"]["base"] == {"backend": "hf", "device": "cpu", "dtype": "float32"}
    assert resolved["seeds"] == {"generation": 0}
    assert resolved["versions"]["torch"] and resolved["versions"]["transformers"] and resolved["versions"]["evalkit"]
    run_dir = next((tmp_path / "reports" / "tiny").iterdir())
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["sections"]["resolved_suite"] == resolved

    # The suite file changes afterwards: a new prompt and token budget. --from ignores it.
    edited = yaml.safe_load(suite.read_text())
    edited["prompt"]["system"] = "Answer in French."
    edited["generation"]["max_new_tokens"] = 30
    suite.write_text(yaml.safe_dump(edited))

    code_again, again = _run(["run", "--from", first["run_id"], "--no-cache"], tmp_path / "again.json")
    assert code_again == code
    assert again["sections"]["resolved_suite"]["config"] == resolved["config"]
    assert again["sections"]["resolved_suite"]["overrides"] == resolved["overrides"]
    assert [c["identity"] for c in again["candidates"]] == [c["identity"] for c in first["candidates"]]
    assert again["dataset_hash"] == first["dataset_hash"]
    assert len(again["candidates"][0]["metrics"]) and again["candidates"][0]["metrics"] == first["candidates"][0]["metrics"]
    second_dir = sorted(p for p in (tmp_path / "reports" / "tiny").iterdir() if p != run_dir)[-1]
    assert _results(str(second_dir)) == _results(str(run_dir))
    assert len(_results(str(run_dir))) == 2  # the --limit, applied again

    # By run directory too; and a changed dataset is one clear refusal, exit 2, before generating.
    data = tmp_path / "data" / "eval.jsonl"
    data.write_text(data.read_text() + data.read_text().splitlines()[0] + "\n")
    capsys.readouterr()
    assert main(["run", "--from", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "cannot rerun" in err and "dataset" in err and len(err.strip().splitlines()) == 1


def test_from_refuses_a_changed_adapter_or_model_naming_it(make_suite: SuiteWriter, tmp_path: Path,
                                                            tiny_model_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    model = tmp_path / "model-copy"
    shutil.copytree(tiny_model_dir, model)
    suite = make_suite(candidates=[{"name": "base", "model": str(model)}])
    _, first = _run(["run", str(suite), "--limit", "2"], tmp_path / "first.json")
    config = json.loads((model / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5 if config.get("rms_norm_eps") != 1e-5 else 1e-6
    (model / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["run", "--from", first["run_id"]]) == 2
    err = capsys.readouterr().err
    assert "candidate base: model_fingerprint" in err


@pytest.mark.parametrize("extra", [["--set", "generation.seed=1"], ["--limit", "2"], ["--candidate", "base"]])
def test_from_with_an_option_that_changes_the_suite_is_refused(extra: list[str], capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    assert main(["run", "--from", "20260101-000000", *extra]) == 2
    assert "reruns the recorded suite exactly" in capsys.readouterr().err


def test_run_needs_a_suite_or_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "--from RUN" in capsys.readouterr().err


def test_a_run_without_a_record_is_refused_with_what_to_do(make_suite: SuiteWriter, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    suite = make_suite()
    _run(["run", str(suite), "--limit", "2"], tmp_path / "first.json")
    run_dir = next((tmp_path / "reports" / "tiny").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["sections"]["resolved_suite"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / "none.db"))  # found by its directory only
    assert main(["run", "--from", str(run_dir)]) == 2
    assert "records no resolved suite" in capsys.readouterr().err
