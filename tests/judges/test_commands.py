from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evalkit.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_validate_shipped_rubric(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rubric", "validate", str(REPO / "rubrics/classifier_quality.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "16 human-labelled" in out


def test_validate_reports_file_line_field(write_rubric, good_rubric, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    del good_rubric["criteria"][0]["description"]
    path = write_rubric(good_rubric)
    assert main(["rubric", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"evalkit: error: {path}:") and "criteria.0.description" in err and "\n" not in err


def test_validate_catches_a_template_that_does_not_render(write_rubric, good_rubric,  # type: ignore[no-untyped-def]
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    good_rubric["template"] = "{{ item.missing_field }} {{ prediction }}"
    assert main(["rubric", "validate", str(write_rubric(good_rubric))]) == 2
    assert "missing_field" in capsys.readouterr().err


def test_new_writes_a_skeleton_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "tone.yaml"
    assert main(["rubric", "new", "tone", "--out", str(out)]) == 0
    assert out.read_text().startswith("#")
    assert main(["rubric", "validate", str(out)]) == 0
    assert main(["rubric", "new", "tone", "--out", str(out)]) == 2  # never overwrites


def test_preview_prints_the_exact_prompt(make_suite, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    suite = make_suite()
    code = main(["rubric", "preview", str(REPO / "rubrics/classifier_quality.yaml"), "--suite", str(suite),
                 "--item", "2", "--prediction", "PRED-TEXT"])
    assert code == 0
    out = capsys.readouterr().out
    assert "--- system ---" in out and "Can you update my billing address?" in out
    assert re.search(r"Actual output: <candidate_output-(\w+)>\nPRED-TEXT\n</candidate_output-\1>", out)
    assert main(["rubric", "preview", str(REPO / "rubrics/classifier_quality.yaml"), "--suite", str(suite),
                 "--item", "99"]) == 2


def test_calibrate_with_a_local_judge(tiny_model_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rubric = REPO / "rubrics/classifier_quality.yaml"
    report = tmp_path / "cal.json"
    labels = tmp_path / "labels.jsonl"  # a few of the shipped labels keep the test fast
    labels.write_text("".join((REPO / "rubrics/labels/classifier_quality.jsonl").read_text().splitlines(True)[:5]))
    code = main(["rubric", "calibrate", str(rubric), "--labels", str(labels), "--judge", f"local:{tiny_model_dir}",
                 "--repeats", "2",
                 "--json", str(report), "--min-kappa", "0.99"])
    assert code == 1  # a random model is far from the human labels
    data = json.loads(report.read_text())
    assert data["n"] == 5 and set(data["criteria"]) == {"format", "accuracy", "style"}
    for stats in data["criteria"].values():
        assert stats["n"] == 5 and 0 <= stats["exact"] <= stats["within_one"] <= 1
        assert stats["self_consistency"] == 0.0  # the local judge is deterministic
    assert "kappa" in capsys.readouterr().out


def test_calibrate_rejects_a_bad_judge(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rubric", "calibrate", str(REPO / "rubrics/classifier_quality.yaml"), "--judge", "gpt"]) == 2
    assert "provider[:model]" in capsys.readouterr().err
