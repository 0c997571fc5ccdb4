"""Data lint finds planted problems (naming the lines) and passes clean data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.data.classifier import generate_examples
from evalkit.data.items import Item
from evalkit.data.lint import lint_file, lint_items, output_format
from evalkit.errors import DataError
from evalkit.prompting import PromptTemplate

TEMPLATE = PromptTemplate(system="Classify.", user="{{ instruction }}\n\n{{ input }}", expected="{{ output }}")


@pytest.fixture(scope="module")
def clean_rows() -> list[dict[str, str]]:
    """220 real classifier examples: no problems at all."""
    return generate_examples(220, seed=11)


def _items(rows: list[dict[str, Any]]) -> list[Item]:
    return [Item(str(n), row, line=n) for n, row in enumerate(rows, start=1)]


def _rules(rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, tuple[int, ...]]:
    report = lint_items(Path("train.jsonl"), _items(rows), TEMPLATE, **kwargs)
    return {f.rule: f.lines for f in report.findings}


def test_clean_data_passes(clean_rows: list[dict[str, str]], tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    report = lint_items(Path("t.jsonl"), _items(clean_rows), TEMPLATE, tokenizer, 1024)
    assert report.findings == []
    report.raise_if_refused()


@pytest.mark.parametrize(("count", "rule", "severity"), [(99, "too_few", "error"), (150, "few", "warning")])
def test_counts(clean_rows: list[dict[str, str]], count: int, rule: str, severity: str) -> None:
    report = lint_items(Path("t.jsonl"), _items(clean_rows[:count]), TEMPLATE)
    assert [(f.rule, f.severity) for f in report.findings] == [(rule, severity)]


def test_too_few_is_refused_unless_forced(clean_rows: list[dict[str, str]]) -> None:
    report = lint_items(Path("t.jsonl"), _items(clean_rows[:50]), TEMPLATE)
    with pytest.raises(DataError, match=r"t.jsonl: data lint refused the file: only 50 examples.*--force"):
        report.raise_if_refused()
    report.raise_if_refused(force=True)


def _relabel(row: dict[str, str], output: str) -> dict[str, str]:
    return {**row, "output": output}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: json.dumps(dict(reversed(list(json.loads(o).items())))), "keys in a different order"),
        (lambda o: str(json.loads(o)), "single-quoted (not JSON) where most are JSON"),
        (lambda o: o + "  ", "trailing whitespace"),
        (lambda o: json.dumps(json.loads(o), separators=(",", ":")), "compact spacing"),
        (lambda o: "critical, account_access", "not JSON where most are JSON"),
        (lambda o: json.dumps({k: v for k, v in json.loads(o).items() if k != "sentiment"}), "different keys"),
    ],
)
def test_mixed_output_formats_are_refused_with_the_lines(
    clean_rows: list[dict[str, str]], change: Any, reason: str
) -> None:
    rows = list(clean_rows)
    for line in (4, 57):
        rows[line - 1] = _relabel(rows[line - 1], change(rows[line - 1]["output"]))
    report = lint_items(Path("t.jsonl"), _items(rows), TEMPLATE)
    (finding,) = [f for f in report.findings if f.rule == "mixed_format"]
    assert finding.severity == "error" and finding.lines == (4, 57)
    assert f"line 4: {reason}" in finding.message and "2 of 220 differ" in finding.message


def test_duplicates_and_empty_and_missing_fields(clean_rows: list[dict[str, str]]) -> None:
    rows = list(clean_rows)
    rows[9] = dict(rows[2])  # line 10 repeats line 3
    rows[19] = {**rows[19], "input": "   "}
    rows[29] = {k: v for k, v in rows[29].items() if k != "instruction"}
    found = _rules(rows)
    assert found == {"duplicate": (10,), "empty_field": (20,), "missing_field": (30,)}


def test_examples_longer_than_the_max_length(clean_rows: list[dict[str, str]], tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    rows = list(clean_rows)
    rows[5] = {**rows[5], "input": rows[5]["input"] + " and then" * 400}
    report = lint_items(Path("t.jsonl"), _items(rows), TEMPLATE, tokenizer, 1024)
    (finding,) = report.findings
    assert finding.rule == "too_long" and finding.lines == (6,) and "line 6 (" in finding.message


def test_output_formats_of_equal_shape_are_equal() -> None:
    assert output_format('{"a": 1, "b": 2}') == output_format('{"a": 3, "b": 4}')
    assert output_format('{"a": 1, "b": 2}') != output_format('{"b": 2, "a": 1}')
    assert output_format("positive") == output_format("negative")


def test_lint_cli(tmp_path: Path, clean_rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    path = tmp_path / "train.jsonl"
    rows = [*clean_rows[:119], dict(clean_rows[0])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "lint", str(path)]) == 2
    captured = capsys.readouterr()
    assert "line 120 repeats line 1" in captured.out and "evalkit: error:" in captured.err
    assert main(["data", "lint", str(path), "--force"]) == 0
    assert lint_file(path).examples == 120
