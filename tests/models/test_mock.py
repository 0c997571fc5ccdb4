"""The ``mock`` backend: scripted and echoed outputs through the whole run, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.errors import ConfigError
from evalkit.models.backend import GenerationItem, ModelVariant, create_backend
from evalkit.models.mock import MockBackend, load_script
from evalkit.models.sources import hosted_model
from evalkit.suite.config import GenerationConfig, load_suite
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

REPO = Path(__file__).resolve().parents[2]


def write_mock_suite(root: Path, candidates: list[dict[str, Any]], **overrides: Any) -> Path:
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    (root / "suites" / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "suites" / "schemas" / "classifier.json").write_text(
        (REPO / "suites" / "schemas" / "classifier.json").read_text())
    suite: dict[str, Any] = {
        "name": "dry",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"system": "Classify the ticket as JSON.", "user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": candidates,
        "checks": ["exact_match", "json_valid", {"json_schema": "schemas/classifier.json"}, "field_accuracy"],
        "output_dir": "../reports",
        **overrides,
    }
    path = root / "suites" / "dry.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


RUN_IN_FRESH_PROCESS = """
import json, sys
from evalkit.cli import main
code = main(["run", sys.argv[1], "--json", sys.argv[2]])
heavy = sorted(m for m in ("torch", "transformers", "vllm", "peft") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def test_a_whole_suite_runs_on_the_mock_backend_without_importing_torch(tmp_path: Path) -> None:
    # Item ids are line numbers: line 2 answers wrong JSON values, line 3 no JSON at all.
    wrong = dict(json.loads(CLASSIFIER_ITEMS[1]["output"]), severity="critical")
    write_jsonl(tmp_path / "suites" / "scripted.jsonl",
                [{"id": "2", "output": json.dumps(wrong)}, {"id": "3", "output": "Sure! Here it is"}])
    suite = write_mock_suite(tmp_path, [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
        {"name": "lora", "model": "my-org/not-on-this-machine", "backend": "mock",
         "options": {"outputs": "scripted.jsonl"}},
    ])
    summary_file = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-c", RUN_IN_FRESH_PROCESS, str(suite), str(summary_file)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "EVALKIT_STORE": str(tmp_path / "store.db")})
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 0, "heavy": []}, proc.stderr
    summary = json.loads(summary_file.read_text())
    metrics = {c["name"]: c["metrics"] for c in summary["candidates"]}
    assert metrics["base"]["exact_match"] == 1.0 and metrics["base"]["json_schema"] == 1.0
    assert metrics["lora"]["exact_match"] == pytest.approx(1 / 3)
    assert metrics["lora"]["json_valid"] == pytest.approx(2 / 3)
    assert metrics["lora"]["field_accuracy.severity"] == pytest.approx(1 / 3)


def variant(options: dict[str, Any], base_dir: Path | None = None) -> ModelVariant:
    return ModelVariant(model=hosted_model("m", "mock"), options=options, base_dir=base_dir)


ITEMS = [GenerationItem("a", "ref-a"), GenerationItem("b", "ref-b")]
CONVERSATIONS = [[{"role": "system", "content": "s"}, {"role": "user", "content": "question a"}],
                 [{"role": "user", "content": "question b"}]]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["ref-a", "ref-b"]),
        ({"echo": "prompt"}, ["question a", "question b"]),
        ({"outputs": {"b": "scripted b"}}, ["ref-a", "scripted b"]),
        ({"outputs": {"b": "scripted b"}, "default": ""}, ["", "scripted b"]),
    ],
    ids=["echo-expected", "echo-prompt", "script-then-echo", "script-then-default"],
)
def test_mock_answers(options: dict[str, Any], expected: list[str]) -> None:
    settings = GenerationConfig()
    backend = create_backend("mock")
    assert isinstance(backend, MockBackend)
    done: list[int] = []
    assert backend.generate(variant(options), CONVERSATIONS, settings, done.append, items=ITEMS) == expected
    assert sum(done) == 2


@pytest.mark.parametrize(
    ("options", "lines", "message"),
    [
        ({"colour": "blue"}, None, "unknown option(s) colour; allowed: outputs, echo, default"),
        ({"echo": "reference"}, None, "options.echo must be one of expected, prompt"),
        ({"outputs": ["a"]}, None, "options.outputs must map item ids to output strings"),
        ({"outputs": "missing.jsonl"}, None, "missing.jsonl not found"),
        ({"outputs": "out.jsonl"}, ['{"id": "a", "output": "x"}', "{oops"], "out.jsonl:2: not valid JSON"),
        ({"outputs": "out.jsonl"}, ['{"id": "a", "output": 3}'], "out.jsonl:1: needs \"id\" and a string"),
    ],
    ids=["unknown-option", "bad-echo", "bad-outputs", "missing-file", "bad-line", "bad-record"],
)
def test_bad_mock_options_are_one_clear_config_error(
    tmp_path: Path, options: dict[str, Any], lines: list[str] | None, message: str
) -> None:
    if lines is not None:
        (tmp_path / "out.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_script(options, tmp_path)
    assert message in str(caught.value)


def test_the_generation_cache_key_follows_the_script(tmp_path: Path) -> None:
    from evalkit.models.backend import runtime_identity

    (tmp_path / "out.jsonl").write_text('{"id": "a", "output": "x"}\n')
    before = runtime_identity("mock", variant({"outputs": "out.jsonl"}, tmp_path))
    (tmp_path / "out.jsonl").write_text('{"id": "a", "output": "y"}\n')
    after = runtime_identity("mock", variant({"outputs": "out.jsonl"}, tmp_path))
    assert before["script"] != after["script"] and before["device"] == "none"


def test_an_unknown_backend_names_the_registered_ones(tmp_path: Path) -> None:
    suite = write_mock_suite(tmp_path, [{"name": "base", "model": "smollm2-135m-instruct", "backend": "mocky"}])
    with pytest.raises(ConfigError) as caught:
        load_suite(suite)
    assert "unknown backend 'mocky'; available: hf, mock, openai_server, vllm" in str(caught.value)
    assert "dry.yaml:" in str(caught.value)


def test_a_scripted_output_with_a_raw_line_separator_is_kept_whole(tmp_path: Path) -> None:
    text = "first\u2028second\x1cthird"
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": "a", "output": text}, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    assert load_script({"outputs": "out.jsonl"}, tmp_path).outputs == {"a": text}
