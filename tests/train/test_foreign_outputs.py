"""Training and merging never replace a directory evalkit did not make, unless told to with --force.

Each target holds a sentinel file (and, for a model directory, a config.json of the
user's own, as a model they put there would): every command refuses with exit 2, names
the directory and ``--force``, and leaves every byte in place; with ``--force`` the
directory is replaced by evalkit's output, which then carries evalkit's marker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from training_fixtures import TrainedTiny, write_train_config

from evalkit.cli import main
from evalkit.files.home import MARKER_NAME

SuiteWriter = Any


def _foreign_dir(path: Path) -> dict[str, bytes]:
    """Make a directory of the user's and return its contents."""
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"the": "user\'s own model"}')
    (path / "notes.txt").write_text("years of work")
    return _contents(path)


def _contents(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _refusal(capsys: pytest.CaptureFixture[str], directory: Path) -> str:
    err = capsys.readouterr().err
    assert str(directory) in err and "--force" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    return err


def test_merge_refuses_a_foreign_out_then_replaces_it_with_force(
    trained_tiny: TrainedTiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    before = _foreign_dir(out)
    assert main(["merge", str(trained_tiny.adapter), "--out", str(out)]) == 2
    _refusal(capsys, out)
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no staging left behind

    assert main(["merge", str(trained_tiny.adapter), "--out", str(out), "--force"]) == 0
    assert not (out / "notes.txt").exists()
    assert (out / MARKER_NAME).is_file() and (out / "evalkit-manifest.json").is_file()
    # Made by evalkit now: merging again replaces it without --force.
    assert main(["merge", str(trained_tiny.adapter), "--out", str(out)]) == 0


def test_train_refuses_a_foreign_output_dir_before_training(
    train_dir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_train_config(train_dir, tiny_model_dir)
    out = train_dir / "adapters" / "mine"
    before = _foreign_dir(out)
    assert main(["train", str(config), "--out", str(out)]) == 2
    _refusal(capsys, out)
    assert _contents(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["mine"]

    assert main(["train", str(config), "--out", str(out), "--force", "--max-steps", "1"]) == 0
    assert not (out / "notes.txt").exists()
    assert (out / "adapter_config.json").is_file() and (out / MARKER_NAME).is_file()


def test_run_refuses_to_merge_into_a_foreign_model_dir(
    make_suite: SuiteWriter, tmp_path: Path, tiny_model_dir: Path, trained_tiny: TrainedTiny,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_dir = tmp_path / "models" / "mine"
    before = _foreign_dir(model_dir)
    suite = make_suite(candidates=[
        {"name": "base", "model": str(tiny_model_dir)},
        {"name": "merged", "model": str(model_dir), "merged_from": str(trained_tiny.adapter)},
    ])
    assert main(["run", str(suite)]) == 2
    err = _refusal(capsys, model_dir)
    assert "evalkit merge" in err and "candidate 'merged'" in err
    assert _contents(model_dir) == before
    assert not (tmp_path / "reports").exists()  # refused before anything ran: no run directory


def test_run_refuses_to_train_into_a_foreign_adapter_dir(
    make_suite: SuiteWriter, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "train").mkdir()
    config = write_train_config(tmp_path / "train", tiny_model_dir, output_dir="../adapters/mine",
                                data="../data/train.jsonl")
    adapter = tmp_path / "adapters" / "mine"
    before = _foreign_dir(adapter)
    suite = make_suite(candidates=[
        {"name": "base", "model": str(tiny_model_dir)},
        {"name": "lora", "model": str(tiny_model_dir), "train": str(config)},
    ])
    assert main(["run", str(suite)]) == 2
    err = _refusal(capsys, adapter)
    assert "evalkit train" in err
    assert _contents(adapter) == before
    assert not (tmp_path / "reports").exists()
