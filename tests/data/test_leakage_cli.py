"""`evalkit data leakage TRAIN EVAL` lists planted leaks (exact and near) and passes clean splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.data.classifier import generate_examples
from evalkit.data.classifier_split import split_examples
from evalkit.data.items import Item, comparison_text, find_leaks


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def split() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return split_examples(generate_examples(200, seed=5), 0.2, seed=5)


def test_clean_split_has_no_leaks(tmp_path: Path, split: tuple[list[dict[str, str]], list[dict[str, str]]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    train, evaluation = split
    code = main(["data", "leakage", str(_write(tmp_path / "t.jsonl", train)),
                 str(_write(tmp_path / "e.jsonl", evaluation))])
    assert code == 0 and "no leakage" in capsys.readouterr().out


def test_planted_exact_and_near_duplicates_are_listed(
    tmp_path: Path, split: tuple[list[dict[str, str]], list[dict[str, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    train, evaluation = split
    train = list(train)
    train[10] = {**train[10], "input": evaluation[2]["input"].upper()}  # exact after normalisation
    train[20] = {**train[20], "input": "Hello team! " + evaluation[6]["input"] + " Thanks a lot, Sam"}
    code = main(["data", "leakage", str(_write(tmp_path / "t.jsonl", train)),
                 str(_write(tmp_path / "e.jsonl", evaluation))])
    captured = capsys.readouterr()
    assert code == 2
    assert "2 eval items leak into the training data" in captured.err
    assert "eval line 3 ~ train line 11 (exact)" in captured.err and "eval line 7 ~ train line 21 (overlap" in captured.err
    assert "2 leaked pairs" in captured.out


def test_preference_prompts_are_compared_by_their_last_user_message() -> None:
    fields = {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Classify\n\nmy card was stolen"}]}
    assert comparison_text(fields, "input") == "Classify\n\nmy card was stolen"
    leaks = find_leaks([Item("1", fields, 1)], [Item("1", {"input": "My card was stolen"}, 4)])
    assert [(leak.eval_line, leak.train_line, leak.exact) for leak in leaks] == [(4, 1, False)]
