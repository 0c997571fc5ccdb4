from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.data.items import load_items
from evalkit.errors import DataError
from evalkit.files.home import file_sha256


def test_jsonl_ids_default_to_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"input": "a"}\n\n{"input": "b"}\n')
    items = load_items(path)
    assert [(i.id, i.line, i.fields["input"]) for i in items] == [("1", 1, "a"), ("3", 3, "b")]


def test_id_field_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(f'{{"id": "x{n}", "input": "{n}"}}\n' for n in range(5)))
    items = load_items(path, id_field="id", limit=2)
    assert [i.id for i in items] == ["x0", "x1"]


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("input,output\nhello,world\n")
    assert load_items(path)[0].fields == {"input": "hello", "output": "world"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"input": "a"}\n{"input": \n', r"d.jsonl:2: not valid JSON"),
        ('{"input": "a"}\n[1, 2]\n', r"d.jsonl:2: expected a JSON object, got list"),
        ("", r"no items"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_items(path)


def test_repeated_and_missing_ids(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": 1}\n{"id": 1}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: id '1' repeats line 1"):
        load_items(path, id_field="id")
    with pytest.raises(DataError, match=r"d.jsonl:1: id field 'key' is missing"):
        load_items(path, id_field="key")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset file not found"):
        load_items(tmp_path / "nope.jsonl")


def test_file_hash_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("a")
    first = file_sha256(path)
    path.write_text("b")
    assert file_sha256(path) != first and len(first) == 64
