"""`evalkit report RUN` and `evalkit report --compare A B` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import DataError
from evalkit.record.run_dir import load_run_dir, write_run
from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run


@pytest.fixture(autouse=True)
def only_the_report_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse with the report command alone: these tests are about it, not other commands' parsers."""
    monkeypatch.setattr("evalkit.cli.COMMAND_MODULES", ["evalkit.commands.report"])


@pytest.fixture
def no_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default store at a file that does not exist, and work in tmp_path."""
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path / "absent" / "evalkit.db"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_dir_round_trips_items_scores_and_sections(tmp_path: Path) -> None:
    run = synthetic_run(30)
    run_dir = write_run(run, tmp_path)
    loaded = load_run_dir(run_dir)
    assert [c.name for c in loaded.candidates] == [c.name for c in run.candidates]
    assert loaded.candidates[2].items[5] == run.candidates[2].items[5]
    assert loaded.candidates[1].identity == run.candidates[1].identity
    assert loaded.sections["comparison"] == json.loads(json.dumps(run.sections["comparison"]))
    assert loaded.run_dir == run_dir


def test_report_rebuilds_into_the_run_directory(no_default_store: Path) -> None:
    run_dir = write_run(synthetic_run(30), no_default_store / "reports")
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="verdict"' in page and "Do not deploy" in page
    assert not (no_default_store / "absent").exists()  # reading a run directory creates no store


def test_report_by_run_id_from_the_store_with_history(no_default_store: Path) -> None:
    store_path = no_default_store / "store.db"
    with RunStore(store_path) as store:
        store.save_run(synthetic_run(30, seed=1, with_comparison=False))
        store.save_run(synthetic_run(30, seed=2))
    assert main(["report", "20261128-100002", "--store", str(store_path), "--out", "out/r.html"]) == 0
    page = (no_default_store / "out" / "r.html").read_text(encoding="utf-8")
    assert 'id="history"' in page and "20261128-100001" in page
    assert 'id="flips"' in page  # per-item values came back from the store


def test_compare_two_run_directories(no_default_store: Path) -> None:
    before = write_run(synthetic_run(40, seed=1), no_default_store / "a")
    after = write_run(synthetic_run(40, seed=2), no_default_store / "b")
    assert main(["report", "--compare", str(before), str(after)]) == 0
    out = no_default_store / "compare-20261128-100001-vs-20261128-100002.html"
    page = out.read_text(encoding="utf-8")
    assert "comparing run 20261128-100001 (baseline) with run 20261128-100002" in page
    assert "lora · 20261128-100002" in page and "lora · 20261128-100001" in page
    assert 'class="card' in page and "run 20261128-100001" in page


@pytest.mark.parametrize("argv, message", [
    (["report"], "give either RUN or --compare A B"),
    (["report", "no-such-run"], "'no-such-run' is not a run directory"),
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str, no_default_store: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evalkit: error:") and message in err and "\n" not in err


def test_a_damaged_results_file_names_its_line(no_default_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(synthetic_run(10, with_comparison=False), no_default_store / "reports")
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:40]
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"results\.jsonl:4: not valid JSON"):
        load_run_dir(run_dir)
    assert main(["report", str(run_dir), "--out", "x.html"]) == 2
    assert "results.jsonl:4" in capsys.readouterr().err
    assert not (no_default_store / "x.html").exists()
