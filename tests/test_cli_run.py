"""End to end: `evalkit run` on small suites through the tiny random model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS

SuiteWriter = Callable[..., Path]


def run_dirs(suite: Path) -> list[Path]:
    root = suite.parent.parent / "reports"
    return sorted(p for p in root.rglob("*") if p.is_dir() and p.parent.name == "tiny") if root.exists() else []


def test_run_writes_results_summary_and_report(make_suite: SuiteWriter, tiny_model_dir: Path) -> None:
    suite = make_suite(candidates=[
        {"name": "base", "model": str(tiny_model_dir)},
        {"name": "fewshot", "model": str(tiny_model_dir), "prompt": {"few_shot": 2}},
        {"name": "lora", "model": str(tiny_model_dir), "adapter": "../adapters/missing", "optional": True},
    ])
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(suite)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "exact_match" in proc.stdout and "report:" in proc.stdout
    assert "not evaluated lora" in proc.stderr and "evalkit train" in proc.stderr
    assert "NOT EVALUATED lora" in proc.stdout
    (run_dir,) = run_dirs(suite)
    assert {p.name for p in run_dir.iterdir()} >= {"results.jsonl", "summary.json", "report.html"}
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


@pytest.mark.parametrize("via", ["none", "suite", "command"])
def test_a_missing_candidate_stops_the_run_before_generation_unless_let_be_missing(
    make_suite: SuiteWriter, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, via: str,
) -> None:
    lora = {"name": "lora", "model": str(tiny_model_dir), "adapter": "../adapters/missing"}
    if via == "suite":
        lora["optional"] = True
    suite = make_suite(candidates=[{"name": "base", "model": str(tiny_model_dir)}, lora],
                       bars=[{"lora": "exact_match >= 0.5"}])
    generated: list[str] = []
    from evalkit import runner

    real = runner.evaluate_candidate
    monkeypatch.setattr(runner, "evaluate_candidate",
                        lambda inputs, plan, *a, **k: generated.append(plan.config.name) or real(inputs, plan, *a, **k))
    code = main(["run", str(suite), *(["--allow-missing", "lora"] if via == "command" else [])])
    captured = capsys.readouterr()
    if via == "none":
        assert code == 2 and generated == [] and run_dirs(suite) == []
        err = captured.err.strip()
        assert "\n" not in err and "candidate 'lora' cannot be evaluated: adapter" in err
        assert "evalkit train" in err and "optional: true" in err and "--allow-missing lora" in err
        return
    # Let be missing: the run goes on; lora is not evaluated and its bar does not count (nor pass).
    assert code == 0 and generated == ["base"]
    summary = json.loads((run_dirs(suite)[0] / "summary.json").read_text())
    (bar,) = summary["sections"]["bars"]
    assert (bar["status"], bar["passed"], bar["blocks"]) == ("not_counted", False, False)
    assert "NOT EVALUATED" in (run_dirs(suite)[0] / "report.html").read_text()


def test_an_unknown_allow_missing_name_is_a_usage_error(
    make_suite: SuiteWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite()
    assert main(["run", str(suite), "--allow-missing", "nobody"]) == 2
    assert "no candidate named 'nobody'" in capsys.readouterr().err


def test_an_internal_error_exits_3_in_one_line(
    make_suite: SuiteWriter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = make_suite()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("evalkit.runner.load_inputs", crash)
    assert main(["run", str(suite)]) == 3
    err = capsys.readouterr().err.strip()
    assert err == "evalkit: internal error: RuntimeError: boom second line (rerun with --debug for the traceback)"
    assert run_dirs(suite) == []


def test_run_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0    passed", "1    a regression", "2    usage", "3    internal error", "130  interrupted"):
        assert line in out
    assert "--allow-missing" in out and "inconclusive: fail" in out


def test_debug_shows_the_traceback(make_suite: SuiteWriter) -> None:
    suite = make_suite()
    (suite.parent.parent / "data" / "eval.jsonl").write_text("{oops\n")
    proc = subprocess.run([sys.executable, "-m", "evalkit", "--debug", "run", str(suite)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataError" in proc.stderr


def test_interrupted_run_leaves_no_finished_looking_directory(
    make_suite: SuiteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalkit.record import run_dir

    suite = make_suite()

    def explode(run: object, **options: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("evalkit.report.render.render_report", explode)
    assert main(["run", str(suite)]) == 130
    root = suite.parent.parent / "reports" / "tiny"
    assert [p.name for p in root.iterdir()] == [], "staging directory must be removed"
    assert run_dir.write_run  # the writer is the one under test
