"""`evalkit rubric preview`: both orders of a pairwise prompt, and a repeat's criteria order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evalkit.cli import main

REPO = Path(__file__).resolve().parents[2]
RUBRIC = str(REPO / "rubrics/classifier_quality.yaml")
SUITE = str(REPO / "suites/classifier-constrained.yaml")


def test_pairwise_preview_shows_both_orders(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rubric", "preview", RUBRIC, "--suite", SUITE, "--item", "1", "--pairwise",
                 "--prediction", "CANDIDATE-TEXT", "--other", "BASELINE-TEXT"])
    assert code == 0
    out = capsys.readouterr().out
    first, second = out.split("=== order 2 of 2")
    assert "order 1 of 2: candidate shown as A" in first
    # Each response shown inside its own tag (evalkit.judges.rubric), A before B.
    assert re.search(r"Response A:\n<response_a-\w+>\nCANDIDATE-TEXT\n</response_a-\w+>\n\n"
                     r"Response B:\n<response_b-\w+>\nBASELINE-TEXT\n", first)
    assert re.search(r"Response A:\n<response_a-\w+>\nBASELINE-TEXT\n</response_a-\w+>\n\n"
                     r"Response B:\n<response_b-\w+>\nCANDIDATE-TEXT\n", second)


def test_repeat_preview_rotates_the_criteria(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rubric", "preview", RUBRIC, "--suite", SUITE, "--item", "1"]) == 0
    plain = capsys.readouterr().out.rsplit("--- user ---", 1)[1]
    assert main(["rubric", "preview", RUBRIC, "--suite", SUITE, "--item", "1", "--repeat", "1"]) == 0
    rotated = capsys.readouterr().out.rsplit("--- user ---", 1)[1]
    # format, accuracy, style -> accuracy, style, format in the answer's JSON fields.
    assert plain.index('"format": <1-5>') < plain.index('"accuracy": <1-5>')
    assert rotated.index('"accuracy": <1-5>') < rotated.index('"style": <1-5>') < rotated.index('"format": <1-5>')
