"""Bad input fails closed: exit 2, at most three lines naming the file/line/field, no traceback.

One table of broken inputs across every command that reads files (run, compare, report,
train, merge, data, rubric, parity). Each case is run in-process through
``evalkit.cli.main`` (fast: nothing loads a model, because every check happens before
that); two are also run as real processes to prove the exit code the shell sees.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.cli import main

REPO = Path(__file__).resolve().parents[1]
SuiteWriter = Callable[..., Path]


@dataclass
class Env:
    """What a case can break: a valid suite (written by ``make_suite``) and its directory."""

    suite: Path
    root: Path
    model: Path
    make_suite: SuiteWriter

    def data(self) -> dict[str, Any]:
        """The suite as data."""
        return dict(yaml.safe_load(self.suite.read_text()))

    def rewrite(self, **changes: Any) -> Path:
        """Write the suite again with top-level keys changed (None removes a key)."""
        data = self.data()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.suite.write_text(yaml.safe_dump(data, sort_keys=False))
        return self.suite

    def candidate(self, **fields: Any) -> Path:
        """Add a second candidate with these fields (on the tiny model unless given)."""
        data = self.data()
        data["candidates"].append({"name": "lora", "model": str(self.model), **fields})
        self.suite.write_text(yaml.safe_dump(data, sort_keys=False))
        return self.suite

    def file(self, name: str, content: str | bytes) -> Path:
        """Write a file under the root and return it."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path


def rubric_text(**changes: Any) -> str:
    rubric = yaml.safe_load((REPO / "rubrics" / "classifier_quality.yaml").read_text())
    rubric.pop("labels", None)
    rubric.update(changes)
    return yaml.safe_dump(rubric, sort_keys=False)


def judged(env: Env, rubric: Path, **entry: Any) -> Path:
    return env.rewrite(judges=[{"rubric": str(rubric), "judge": {"provider": "local", "model": str(env.model)},
                                **entry}])


def run(path: Path, *extra: str) -> list[str]:
    return ["run", str(path), *extra]


def train_config(env: Env, **changes: Any) -> Path:
    config = {"method": "sft", "model": str(env.model), "data": "data/train.jsonl", "output_dir": "out/adapter"}
    config.update(changes)
    return env.file("train.yaml", yaml.safe_dump(config))


Case = tuple[str, Callable[[Env], list[str]], str]
CASES: list[Case] = [
    # -- evalkit run: the suite file itself
    ("yaml-syntax", lambda e: run(e.file("suites/tiny.yaml", "name: [tiny\n")), r"tiny\.yaml:\d+: YAML syntax error"),
    ("binary-suite", lambda e: run(e.file("suites/tiny.yaml", b"\xff\xfe\x00name\x81")), r"tiny\.yaml: not a UTF-8"),
    ("empty-suite", lambda e: run(e.file("suites/tiny.yaml", "")), r"tiny\.yaml: the file is empty"),
    ("list-suite", lambda e: run(e.file("suites/tiny.yaml", "- a\n- b\n")), r"tiny\.yaml:1: expected a mapping"),
    ("no-such-suite", lambda e: run(e.root / "nope.yaml"), r"nope\.yaml: file not found"),
    ("unknown-key", lambda e: run(e.rewrite(colour="blue")), r"tiny\.yaml:\d+: colour: unknown key"),
    ("missing-candidates", lambda e: run(e.rewrite(candidates=None)), r"candidates: required field is missing"),
    ("empty-candidates", lambda e: run(e.rewrite(candidates=[])), r"tiny\.yaml:\d+: candidates"),
    ("duplicate-candidates", lambda e: run(e.rewrite(candidates=[{"name": "a", "model": "x"}] * 2)),
     r"candidate names must be unique; repeated: a"),
    ("baseline-unknown", lambda e: run(e.rewrite(baseline="nobody")), r"baseline 'nobody' is not a candidate"),
    ("candidate-name", lambda e: run(e.rewrite(candidates=[{"name": "a b", "model": "x"}])),
     r"candidates\.0\.name: .*letters, digits"),
    ("backend-name", lambda e: run(e.candidate(backend="tgi")), r"candidates\.1\.backend: "),
    ("dtype", lambda e: run(e.candidate(dtype="int3")), r"candidates\.1\.dtype: "),
    ("endpoint-option", lambda e: run(e.candidate(backend="openai_server", options={"base_url": "http://127.0.0.1:9/v1",
                                                                                     "colour": "blue"})),
     r"candidates\.1\.options: backend openai_server: unknown option\(s\) colour"),
    ("endpoint-key-env", lambda e: run(e.candidate(backend="openai_server", options={"base_url": "http://127.0.0.1:9/v1",
                                                                                      "api_key_env": "HOME"})),
     r"candidates\.1\.options: .*api_key_env"),
    ("endpoint-missing", lambda e: run(e.candidate(backend="openai_server")),
     r"candidates\.1\.options: .*set options\.base_url"),
    ("max-new-tokens", lambda e: run(e.rewrite(generation={"max_new_tokens": 0})),
     r"generation\.max_new_tokens: "),
    ("dataset-limit", lambda e: run(e.rewrite(dataset={"path": "../data/eval.jsonl", "limit": 0})),
     r"dataset\.limit: "),
    ("jinja-template", lambda e: run(e.rewrite(prompt={"user": "{{ input "})), r"prompt\.user: .*jinja2 syntax error"),
    ("few-shot-no-train", lambda e: run(e.rewrite(dataset={"path": "../data/eval.jsonl"}, prompt={"few_shot": 2})),
     r"few_shot needs dataset\.train_path"),
    ("unknown-check", lambda e: run(e.rewrite(checks=["exact_matches"])), r"unknown check 'exact_matches'"),
    ("bar-grammar", lambda e: run(e.rewrite(bars=[{"base": "exact_match is great"}])),
     r"bars\.0: .*cannot read bar 'exact_match is great'"),
    ("bar-candidate", lambda e: run(e.rewrite(bars=[{"nobody": "exact_match >= 0.5"}])),
     r"bars\.0: no candidate named 'nobody'"),
    ("bar-metric", lambda e: run(e.rewrite(bars=[{"base": "exact_mtch >= 0.5"}])),
     r"bars\.0: no check, judge or benchmark measures 'exact_mtch'"),
    ("bar-on-baseline", lambda e: run(e.rewrite(bars=[{"base": "exact_match max_drop 3%"}])),
     r"bars\.0: .*'base' is the baseline"),
    ("max-drop", lambda e: run(e.rewrite(max_drop="3 percent")), r"max_drop: threshold '3 percent' is not understood"),
    ("thresholds", lambda e: run(e.rewrite(thresholds={"exact_match": 2})), r"thresholds\.exact_match: "),
    ("inconclusive-policy", lambda e: run(e.rewrite(inconclusive="maybe")), r"inconclusive: "),
    # -- evalkit run: what the suite names
    ("missing-dataset", lambda e: run(e.rewrite(dataset={"path": "../data/none.jsonl"})),
     r"none\.jsonl: dataset file not found"),
    ("malformed-dataset", lambda e: (e.file("data/eval.jsonl", '{"input": "x"}\n{oops\n'), run(e.suite))[1],
     r"eval\.jsonl:2: not valid JSON"),
    ("binary-dataset", lambda e: (e.file("data/eval.jsonl", b'{"input": "\xff\xfe"}\n'), run(e.suite))[1],
     r"eval\.jsonl: not UTF-8 text"),
    ("missing-schema", lambda e: run(e.rewrite(checks=[{"json_schema": "schemas/none.json"}])),
     r"json_schema file .*none\.json not found"),
    ("broken-schema", lambda e: (e.file("suites/schemas/bad.json", "{not json"),
                                 run(e.rewrite(checks=[{"json_schema": "schemas/bad.json"}])))[1],
     r"bad\.json: not a valid JSON schema"),
    ("missing-model", lambda e: run(e.rewrite(candidates=[{"name": "base", "model": str(e.root / "no-model")}])),
     r"no-model.*does not exist"),
    ("missing-adapter", lambda e: run(e.candidate(adapter="../adapters/none")),
     r"candidate 'lora' cannot be evaluated: adapter .*none not found; make it with `evalkit train"),
    ("missing-merged", lambda e: run(e.candidate(model="../adapters/merged", merged_from="../adapters/none")),
     r"candidate 'lora' cannot be evaluated: merged model .*merged not found"),
    ("missing-rubric", lambda e: run(judged(e, e.root / "rubrics" / "none.yaml")),
     r"tiny\.yaml:\d+: judges\.0\.rubric: rubric file .*none\.yaml not found"),
    ("broken-rubric", lambda e: run(judged(e, e.file("rubrics/r.yaml", "name: r\ncriteria: [\n"))),
     r"judges\.0\.rubric: .*r\.yaml:\d+: YAML syntax error"),
    ("invalid-rubric", lambda e: run(judged(e, e.file("rubrics/r.yaml", rubric_text(criteria=[])))),
     r"judges\.0\.rubric: .*r\.yaml:\d+: criteria"),
    ("missing-labels", lambda e: run(judged(e, e.file("rubrics/r.yaml", rubric_text()), labels="none.jsonl")),
     r"judges\.0\.labels: labels file .*none\.jsonl not found"),
    ("broken-labels", lambda e: run(judged(e, e.file("rubrics/r.yaml", rubric_text()),
                                           labels=str(e.file("labels.jsonl", "{oops\n")))),
     r"judges\.0\.labels: .*labels\.jsonl:1: not valid JSON"),
    ("judge-bar-name", lambda e: (judged(e, e.file("rubrics/r.yaml", rubric_text())),
                                  run(e.rewrite(bars=[{"base": "judge.nosuch.format >= 4"}])))[1],
     r"bars\.0: no judge named 'nosuch'"),
    ("judge-bar-criterion", lambda e: (judged(e, e.file("rubrics/r.yaml", rubric_text())),
                                       run(e.rewrite(bars=[{"base": "judge.classifier_quality.colour >= 4"}])))[1],
     r"bars\.0: rubric 'classifier_quality' has no criterion 'colour'"),
    ("benchmark-subject", lambda e: run(e.rewrite(benchmarks=[{"task": "mmlu_mini", "subjects": ["astrology"]}])),
     r"benchmarks\.0\.subjects: "),
    ("benchmark-task", lambda e: run(e.rewrite(benchmarks=[{"task": "mmlu_minii"}])),
     r"benchmarks\.0\.task: unknown benchmark task 'mmlu_minii'"),
    ("benchmark-include-path", lambda e: run(e.rewrite(benchmarks=[{"task": "my_task", "include_path": "none"}])),
     r"benchmarks\.0\.task: benchmark 'my_task': include_path .*none is not a directory"),
    # -- evalkit run: the command line
    ("unknown-candidate-option", lambda e: run(e.suite, "--candidate", "nobody"), r"no candidate named 'nobody'"),
    ("unknown-allow-missing", lambda e: run(e.suite, "--allow-missing", "nobody"), r"no candidate named 'nobody'"),
    ("unknown-flag", lambda e: run(e.suite, "--bogus"), r"unrecognized arguments: --bogus"),
    # -- the other commands
    ("compare-unknown-run", lambda e: ["compare", "no-such-run", "other-run"], r"no-such-run"),
    ("compare-bad-dir", lambda e: ["compare", str(e.file("runs/x/summary.json", "{oops")), "x"], r"summary\.json"),
    ("report-unknown-run", lambda e: ["report", "no-such-run"], r"no-such-run"),
    ("report-compare-unknown", lambda e: ["report", "--compare", "no-a", "no-b"], r"no-a"),
    ("train-missing", lambda e: ["train", str(e.root / "none.yaml")], r"none\.yaml: file not found"),
    ("train-unknown-key", lambda e: ["train", str(train_config(e, colour="blue"))], r"train\.yaml:\d+: colour: unknown key"),
    ("train-binary", lambda e: ["train", str(e.file("train.yaml", b"\x80\x81\x82"))], r"train\.yaml: not a UTF-8"),
    ("train-method", lambda e: ["train", str(train_config(e, method="ppo"))], r"train\.yaml:\d+: method"),
    ("merge-missing-adapter", lambda e: ["merge", str(e.root / "no-adapter"), "--out", str(e.root / "merged")],
     r"no-adapter"),
    ("data-lint-missing", lambda e: ["data", "lint", str(e.root / "none.jsonl")], r"none\.jsonl"),
    ("data-lint-malformed", lambda e: ["data", "lint", str(e.file("t.jsonl", "{oops\n"))], r"t\.jsonl:1"),
    ("data-leakage-missing", lambda e: ["data", "leakage", str(e.root / "a.jsonl"), str(e.root / "b.jsonl")],
     r"a\.jsonl"),
    ("rubric-missing", lambda e: ["rubric", "validate", str(e.root / "none.yaml")], r"none\.yaml: file not found"),
    ("rubric-invalid", lambda e: ["rubric", "validate", str(e.file("r.yaml", rubric_text(criteria=[])))],
     r"r\.yaml:\d+: criteria"),
    ("rubric-binary", lambda e: ["rubric", "validate", str(e.file("r.yaml", b"\xfe\xff"))], r"r\.yaml: not a UTF-8"),
    ("parity-missing-suite", lambda e: ["parity", str(e.root / "none.yaml")], r"none\.yaml: file not found"),
    ("parity-broken-suite", lambda e: ["parity", str(e.rewrite(colour="blue"))], r"colour: unknown key"),
]


@pytest.fixture
def env(make_suite: SuiteWriter, tiny_model_dir: Path) -> Env:
    suite = make_suite()
    return Env(suite=suite, root=suite.parent.parent, model=tiny_model_dir, make_suite=make_suite)


def leftovers(root: Path) -> list[Path]:
    """Run directories, or anything else a failed command may have half-written."""
    found = []
    for name in ("reports", "out", "merged"):
        if (root / name).exists():
            found += [p for p in (root / name).rglob("*") if p.is_dir()]
    return found


def test_the_table_is_big_enough_and_covers_every_command() -> None:
    assert len(CASES) >= 40
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)
    source = Path(__file__).read_text()
    for command in ("compare", "report", "train", "merge", "data", "rubric", "parity"):
        assert f'["{command}"' in source, command
    assert sum(case_id.split("-")[0] not in {"compare", "report", "train", "merge", "data", "rubric", "parity"}
               for case_id, _, _ in CASES) >= 30  # evalkit run's cases


@pytest.mark.parametrize(("setup", "message"), [(s, m) for _, s, m in CASES], ids=[c for c, _, _ in CASES])
def test_bad_input_exits_2_in_at_most_three_lines(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    setup: Callable[[Env], list[str]], message: str,
) -> None:
    monkeypatch.chdir(env.root)
    argv = setup(env)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert code == 2, err
    assert 1 <= len(lines) <= 3, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert re.search(message, err), err
    assert leftovers(env.root) == [], leftovers(env.root)


@pytest.mark.parametrize(("case_id", "argv_of"), [
    ("binary-suite", lambda e: run(e.file("suites/tiny.yaml", b"\xff\xfe\x00name\x81"))),
    ("missing-adapter", lambda e: run(e.candidate(adapter="../adapters/none"))),
])
def test_the_real_process_exits_2(env: Env, case_id: str, argv_of: Callable[[Env], list[str]]) -> None:
    proc = subprocess.run([sys.executable, "-m", "evalkit", *argv_of(env)], capture_output=True, text=True,
                          timeout=300, cwd=env.root)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert leftovers(env.root) == []
    assert json.dumps(case_id)  # the id names the case in the test report
