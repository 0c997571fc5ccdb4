"""End to end: `evalkit run` on small suites through the tiny random model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.testing import CLASSIFIER_ITEMS

SuiteWriter = Callable[..., Path]


def run_dirs(suite: Path) -> list[Path]:
    root = suite.parent.parent / "reports"
    return sorted(p for p in root.rglob("*") if p.is_dir() and p.parent.name == "tiny") if root.exists() else []


def test_run_writes_results_summary_and_report(make_suite: SuiteWriter, tiny_model_dir: Path) -> None:
    suite = make_suite(candidates=[
        {"name": "base", "model": str(tiny_model_dir)},
        {"name": "fewshot", "model": str(tiny_model_dir), "prompt": {"few_shot": 2}},
        {"name": "lora", "model": str(tiny_model_dir), "adapter": "../adapters/missing"},
    ])
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(suite)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "exact_match" in proc.stdout and "report:" in proc.stdout
    assert "skipped lora" in proc.stderr and "evalkit train" in proc.stderr
    (run_dir,) = run_dirs(suite)
    assert {p.name for p in run_dir.iterdir()} == {"results.jsonl", "summary.json", "report.html"}
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 * len(CLASSIFIER_ITEMS)
    assert {r["candidate"] for r in records} == {"base", "fewshot"}
    first = records[0]
    assert first["expected"] == CLASSIFIER_ITEMS[0]["output"]
    assert first["input"]["input"] == CLASSIFIER_ITEMS[0]["input"]
    assert set(first["scores"]) >= {"exact_match", "json_valid", "json_schema", "field_accuracy",
                                    "field_accuracy.severity"}
    # The random model does not write JSON: the JSON checks score 0 and keep the reason.
    assert first["scores"]["json_valid"]["value"] == 0.0
    assert first["scores"]["json_valid"]["reason"].startswith("not JSON")
    # Few-shot examples are in the prompt the model saw, the base prompt has none.
    fewshot = next(r for r in records if r["candidate"] == "fewshot")
    assert fewshot["prompt"].count("<|im_start|>assistant") == 3
    assert first["prompt"].count("<|im_start|>assistant") == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    by_name = {c["name"]: c for c in summary["candidates"]}
    assert by_name["lora"]["status"] == "skipped" and "evalkit train" in by_name["lora"]["message"]
    assert by_name["base"]["identity"]["model_fingerprint"]
    assert by_name["base"]["metrics"]["exact_match"] == 0.0
    assert by_name["base"]["identity"]["prompt_hash"] != by_name["fewshot"]["identity"]["prompt_hash"]
    assert "<title>" in (run_dir / "report.html").read_text() and "tiny" in (run_dir / "report.html").read_text()


BROKEN_ITEMS = [CLASSIFIER_ITEMS[0]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.write_text(s.read_text().replace("name: tiny", "name: [tiny")), r"tiny.yaml:[12]: YAML syntax error"),
        (lambda s: s.write_text(s.read_text() + "colour: blue\n"), r"tiny.yaml:\d+: colour: unknown key"),
        (lambda s: s.write_text(s.read_text().replace("- exact_match", "- exact_matches")),
         r"tiny.yaml:\d+: checks: .*unknown check 'exact_matches'"),
        (lambda s: (s.parent.parent / "data" / "eval.jsonl").unlink(), r"eval.jsonl: dataset file not found"),
        (lambda s: (s.parent.parent / "data" / "eval.jsonl").write_text('{"input": "x"}\n{oops\n'),
         r"eval.jsonl:2: not valid JSON"),
        (lambda s: s.write_text(s.read_text().replace("model: /", "model: /nonexistent/")),
         r"model '/nonexistent/.*does not exist"),
    ],
    ids=["yaml-syntax", "unknown-key", "unknown-check", "missing-dataset", "malformed-line", "bad-model"],
)
def test_bad_input_is_one_line_exit_2_and_no_run_dir(
    make_suite: SuiteWriter, capsys: pytest.CaptureFixture[str], mutate: object, message: str
) -> None:
    import re

    suite = make_suite()
    mutate(suite)  # type: ignore[operator]
    code = main(["run", str(suite)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("evalkit: error: ") and "\n" not in err and "Traceback" not in err
    assert re.search(message, err), err
    assert run_dirs(suite) == []


def test_debug_shows_the_traceback(make_suite: SuiteWriter) -> None:
    suite = make_suite()
    (suite.parent.parent / "data" / "eval.jsonl").write_text("{oops\n")
    proc = subprocess.run([sys.executable, "-m", "evalkit", "--debug", "run", str(suite)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataError" in proc.stderr


def test_interrupted_run_leaves_no_finished_looking_directory(
    make_suite: SuiteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalkit import run_output

    suite = make_suite()

    def explode(run: object, **options: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("evalkit.report.render_report", explode)
    assert main(["run", str(suite)]) == 130
    root = suite.parent.parent / "reports" / "tiny"
    assert [p.name for p in root.iterdir()] == [], "staging directory must be removed"
    assert run_output.write_run  # the writer is the one under test
