from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[1]

VALID = """\
name: demo
dataset:
  path: data.jsonl
candidates:
  - name: base
    model: smollm2-135m-instruct
checks:
  - exact_match
  - json_schema: schemas/x.json
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_shipped_classifier_suite_loads() -> None:
    suite = load_suite(REPO / "suites" / "classifier.yaml")
    assert [c.name for c in suite.candidates] == ["base", "base-fewshot", "lora", "merged", "forgetful", "noop",
                                                    "replay"]
    assert suite.baseline_name == "base"
    assert suite.resolve(suite.dataset.path) == REPO / "data" / "classifier" / "eval.jsonl"
    assert [c.name for c in suite.checks] == ["exact_match", "json_valid", "json_schema", "field_accuracy"]


def test_valid_suite_normalises_checks(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, VALID))
    assert suite.checks[1].name == "json_schema"
    assert suite.checks[1].options == {"value": "schemas/x.json"}
    assert suite.baseline_name == "base"
    assert suite.generation.temperature == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML syntax error: the line of the problem.
        (VALID.replace("  path: data.jsonl", "  path: [data.jsonl"), r"suite.yaml:\d+: YAML syntax error"),
        # Unknown key: its line and the dotted field.
        (VALID.replace("    model: smollm2", "    modle: x\n    model: smollm2"),
         r"suite.yaml:6: candidates.0.modle: unknown key 'modle'"),
        # Unknown check: the list entry's line and the available checks.
        (VALID.replace("  - exact_match", "  - exact_mach"), r"suite.yaml:8: checks: .*unknown check 'exact_mach'.*exact_match"),
        # Missing required field.
        (VALID.replace("dataset:\n  path: data.jsonl\n", ""), r"suite.yaml(:\d+)?: dataset: required field is missing"),
        # Cross-field rules.
        (VALID + "baseline: nobody\n", r"baseline 'nobody' is not a candidate"),
        (VALID.replace("checks:", "  - name: base\n    model: y\nchecks:"), r"candidate names must be unique; repeated: base"),
        (VALID.replace("    model: smollm2-135m-instruct", "    model: smollm2-135m-instruct\n    prompt: {few_shot: 2}"),
         r"few_shot needs dataset.train_path"),
        # A broken prompt template is caught at load time.
        (VALID + "prompt:\n  user: '{{ input '\n", r"suite.yaml:\d+: prompt.user: .*jinja2 syntax error"),
        (VALID.replace("name: demo", "name: 'bad name'"), r"suite.yaml:1: name: .*letters, digits"),
    ],
)
def test_bad_suites_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_suite(write(tmp_path, text))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_suite(write(tmp_path, ""))
