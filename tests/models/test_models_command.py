"""`evalkit models`: list the embedded and converted models, print a model's directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_models_lists_the_embedded_model_saying_what_it_is(empty_home: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    converted = empty_home / "models" / "gguf-0123456789abcdef"
    converted.mkdir(parents=True)
    (converted / "evalkit-fingerprint-v3.txt").write_text("f" * 64 + "\n")
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    embedded = rows[0]
    assert embedded["name"] == "smollm2-135m-instruct" and embedded["path"] is None  # nothing converted here
    assert "Q4_1 GGUF" in embedded["description"] and "dequantized" in embedded["description"]
    assert embedded["source"] and embedded["source"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert Path(embedded["source"]).is_file()
    assert rows[1]["name"] == converted.name and rows[1]["path"] == str(converted)
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "not converted yet" in text and "dequantized" in text


def test_models_path_without_convert_says_how_and_exits_2(empty_home: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "path", "smollm2-135m-instruct"]) == 2
    err = capsys.readouterr().err
    assert "--convert" in err and len(err.strip().splitlines()) == 1
    assert main(["models", "path", "gpt-17"]) == 2
    assert "no model 'gpt-17'" in capsys.readouterr().err
    assert not (empty_home / "models" / "smollm2-135m-instruct").exists()  # nothing converted


@pytest.mark.slow
def test_models_path_convert_makes_a_directory_transformers_loads(empty_home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Slow (~20 s, the one GGUF dequantization): the path printed must be a real, loadable model.
    assert main(["models", "path", "smollm2-135m-instruct", "--convert"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == empty_home / "models" / "smollm2-135m-instruct"
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(str(printed)).num_hidden_layers == 30
    assert main(["models", "path", "smollm2-135m-instruct"]) == 0  # converted now: no --convert needed
    assert Path(capsys.readouterr().out.strip()) == printed
