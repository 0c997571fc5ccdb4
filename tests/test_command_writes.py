"""`--json FILE` and `evalkit export` write through evalkit.files.home: whole files or none."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evalkit.commands.console import emit_json
from evalkit.commands.report import write_table


def test_json_file_is_written_whole_with_nothing_left_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "result.json"
    payload = {"name": "café", "broken": "\ud800", "when": Path("x")}
    assert emit_json(str(out), payload) is False
    assert json.loads(out.read_text(encoding="utf-8")) == {"name": "café", "broken": "\ud800", "when": "x"}
    assert "café" in out.read_text(encoding="utf-8"), "text stays readable, not \\u-escaped"
    assert [p.name for p in out.parent.iterdir()] == ["result.json"]


def test_a_table_that_cannot_be_written_leaves_the_old_file_untouched(tmp_path: Path) -> None:
    out = tmp_path / "items.parquet"
    out.write_bytes(b"old contents")
    mixed = pd.DataFrame({"value": [1, "one", 2.5]})  # parquet has no column type for this
    with pytest.raises(Exception, match="(?i)conversion|convert|type"):
        write_table(mixed, out, "parquet")
    assert out.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["items.parquet"]
    write_table(pd.DataFrame({"value": [1, 2]}), out, "parquet")
    assert pd.read_parquet(out)["value"].tolist() == [1, 2]
