"""The one JSONL reader: records end at newlines only, and a bad line is named with the caller's error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import BenchmarkError, DataError
from evalkit.files.yaml_source import json_objects


def test_separators_inside_a_string_do_not_split_a_record_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    tricky = "a\u2028b\u2029c\x0cd\x1ce\x85f"  # every character str.splitlines() would break at
    lines = [json.dumps({"id": "1", "text": tricky}, ensure_ascii=False), "", "  ",
             json.dumps({"id": "2", "text": "x"})]
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    records = list(json_objects(path))
    assert [(number, record["id"]) for number, record in records] == [(1, "1"), (4, "2")]
    assert records[0][1]["text"] == tricky


def test_a_line_that_is_not_json_is_named_with_the_callers_fix(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"id": 1}\n{"id": 2,\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"data.jsonl:2: not valid JSON \(.* at column \d+\); fix it here"):
        list(json_objects(path, "fix it here"))


def test_a_line_that_is_not_an_object_raises_the_callers_error_type(tmp_path: Path) -> None:
    path = tmp_path / "mmlu.jsonl"
    path.write_text('{"id": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"mmlu.jsonl:2: expected a JSON object, got list; reinstall"):
        list(json_objects(path, "reinstall", BenchmarkError))


def test_records_are_read_as_they_are_needed(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": 1}\nnot json\n', encoding="utf-8")
    reader = json_objects(path)
    assert next(reader) == (1, {"id": 1})  # the damaged line after it is not read yet
    with pytest.raises(DataError, match="big.jsonl:2"):
        next(reader)
