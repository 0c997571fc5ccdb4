"""Hostile suites fail closed, fast and small: exit 2, at most three lines naming the file, no run directory.

A suite is a file people share, so it may be written to hurt: a second ``bars:`` key
that YAML would let win silently, an alias bomb in a candidate's ``options:``, a
million slices, a prompt template that loops 10**9 times or builds a 1 GB string, a
catastrophic regex, a FIFO where a file should be (opening it blocks forever).

Every case runs the CLI's ``main`` in a process of its own, because only a process can be
held to a memory limit: the process runs under ``RLIMIT_AS = 1 GiB``, so an explosion
fails the case (MemoryError, exit 3) instead of taking the machine, and under a
wall-clock timeout that is a hang guard, not a timing assertion. To keep 40 cases to
seconds, each process is forked from a server that imported evalkit once
(:data:`FORK_SERVER`); two tests also run ``python -m evalkit`` from scratch, as the
shell would. The mock backend means no model loads.

The catastrophic regex is not a config error: RE2 matches it in linear time, and the
run scores the item with a reason (:func:`test_a_catastrophic_regex_is_scored_not_hung`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from evalkit.files.yaml_source import MAX_YAML_BYTES
from evalkit.suite.config import MAX_BARS, MAX_CANDIDATES, MAX_CHECKS, MAX_SLICES
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1 << 30
"""Address space of the child: an explosion hits this and fails the case."""
HANG_GUARD_S = 30
"""Wall-clock guard: every case ends in a few seconds; past this the test fails as a hang.
Kept above the issue's 10 s so a loaded CI machine cannot make it flaky."""

CANDIDATE = """  - name: base
    model: smollm2-135m-instruct
    backend: mock
    options: {echo: expected}
"""


def suite_text(*, candidates: str = CANDIDATE, prompt: str = "", extra: str = "",
               dataset: str = "path: ../data/eval.jsonl", checks: str = "checks: [exact_match]\n") -> str:
    """A valid mock suite's YAML text, with hostile parts put in where a case says."""
    return (f"name: hostile\ndataset:\n  {dataset}\n{prompt}candidates:\n{candidates}{checks}"
            f"output_dir: ../reports\n{extra}")


@dataclass
class Env:
    """A folder with a dataset, a schema and a rubric; a case writes the suite (or a FIFO) into it."""

    root: Path

    @property
    def suite(self) -> Path:
        """Where the suite file goes."""
        return self.root / "suites" / "s.yaml"

    def write(self, text: str) -> Path:
        """Write the suite text and return its path."""
        self.suite.write_text(text, encoding="utf-8")
        return self.suite

    def file(self, name: str, text: str) -> Path:
        """Write a file under the root and return it."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def fifo(self, name: str) -> Path:
        """Make a FIFO under the root: opening it for reading would block forever."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path


def run(env: Env, text: str, *extra: str) -> list[str]:
    """``evalkit run`` on this suite text."""
    return ["run", str(env.write(text)), *extra]


def bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML alias bomb as a flow sequence (width ** levels scalars once expanded) and its anchors."""
    lines = [f"      l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"      l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def flow_bomb(levels: int = 9, width: int = 9) -> str:
    """The same bomb on one line, as a flow mapping (for ``--set``)."""
    parts = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    parts += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "{" + ", ".join(parts) + "}"


def template(user: str) -> str:
    """A ``prompt:`` section whose user template is ``user``."""
    return f"prompt:\n  user: {json.dumps(user)}\n"


def rubric_file(env: Env, appended: str = "") -> Path:
    """A valid rubric (the shipped one, without its labels), with ``appended`` text at its end."""
    rubric = yaml.safe_load((REPO / "rubrics" / "classifier_quality.yaml").read_text())
    rubric.pop("labels", None)
    return env.file("rubrics/r.yaml", yaml.safe_dump(rubric, sort_keys=False) + appended)


def judges(rubric: Path, labels: Path | None = None) -> str:
    """A ``judges:`` section on a local judge (never loaded: the rubric fails first)."""
    entry = f"  - rubric: {rubric}\n    judge: {{provider: local, model: smollm2-135m-instruct}}\n"
    return "judges:\n" + entry + (f"    labels: {labels}\n" if labels else "")


Case = tuple[str, Callable[[Env], list[str]], str]
CASES: list[Case] = [
    # -- duplicate keys: YAML's last-wins would silently drop the first
    ("duplicate-top-level-bars",
     lambda e: run(e, suite_text(extra="bars:\n  - base: exact_match >= 0.99\nmax_drop: 3%\n"
                                       "bars:\n  - base: exact_match >= 0.0\n")),
     r"s\.yaml:\d+: duplicate key 'bars' \(first at line \d+\)"),
    ("duplicate-nested-options-block",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("    options: {echo: expected}\n",
                                                                "    options:\n      echo: expected\n"
                                                                "      echo: prompt\n"))),
     r"s\.yaml:\d+: duplicate key 'echo' \(first at line \d+\)"),
    ("duplicate-options-key-in-candidate",
     lambda e: run(e, suite_text(candidates=CANDIDATE + "    options: {echo: prompt}\n")),
     r"s\.yaml:\d+: duplicate key 'options' \(first at line \d+\)"),
    ("duplicate-in-flow-mapping",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("{echo: expected}", "{echo: expected, echo: prompt}"))),
     r"s\.yaml:\d+: duplicate key 'echo' \(first at line \d+\)"),
    ("duplicate-in-list-item",
     lambda e: run(e, suite_text(checks="checks:\n  - regex: {pattern: 'a', pattern: 'b'}\n")),
     r"s\.yaml:\d+: duplicate key 'pattern' \(first at line \d+\)"),
    ("duplicate-three-deep",
     lambda e: run(e, suite_text(prompt="prompt:\n  user: '{{ input }}'\n  system: a\n  user: '{{ output }}'\n")),
     r"s\.yaml:\d+: duplicate key 'user' \(first at line \d+\)"),
    ("duplicate-in-rubric",
     lambda e: run(e, suite_text(extra=judges(rubric_file(e, "name: dup\n")))),
     r"judges\.0\.rubric: .*r\.yaml:\d+: duplicate key 'name' \(first at line \d+\)"),
    ("duplicate-in-train-config",
     lambda e: ["train", str(e.file("train.yaml", "method: sft\nmodel: m\ndata: d.jsonl\noutput_dir: out\n"
                                                   "method: dpo\n"))],
     r"train\.yaml:5: duplicate key 'method' \(first at line 1\)"),
    # -- alias expansion, nesting and size: refused before anything is built
    ("alias-bomb-in-options",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("    options: {echo: expected}\n",
                                                                "    options:\n      echo: expected\n" + bomb()))),
     r"s\.yaml:\d+: holds more than [\d,]+ values \(aliases expanded\)"),
    ("alias-bomb-in-bars",
     lambda e: run(e, suite_text(extra="x-anchors: &b\n" + bomb().replace("      ", "  ") + "bars: [*b, *b]\n")),
     r"s\.yaml:\d+: holds more than [\d,]+ values"),
    ("alias-bomb-in-set",
     lambda e: run(e, suite_text(), "--set", "candidates.0.options.x=" + flow_bomb()),
     r"--set candidates\.0\.options\.x=.*holds more than [\d,]+ values"),
    ("recursive-alias",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("{echo: expected}", "&o {echo: expected, x: *o}"))),
     r"s\.yaml:\d+: an alias refers to the value that contains it"),
    ("nesting-too-deep",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("{echo: expected}",
                                                               "{echo: expected, x: " + "[" * 200 + "]" * 200 + "}"))),
     r"s\.yaml:\d+: nests deeper than \d+ levels"),
    ("huge-file",
     lambda e: run(e, suite_text() + "# " + "x" * (MAX_YAML_BYTES + 10) + "\n"),
     r"s\.yaml: [\d,]+ bytes, over the [\d,]+-byte limit"),
    # -- list lengths: the cap and the field named
    ("huge-slices-list",
     lambda e: run(e, suite_text(extra="slices:\n" + "".join(f"  - f{i}\n" for i in range(40_000)))),
     rf"s\.yaml:\d+: slices: more than {MAX_SLICES:,} entries"),
    ("too-many-candidates",
     lambda e: run(e, suite_text(candidates="".join(CANDIDATE.replace("base", f"c{i}")
                                                      for i in range(MAX_CANDIDATES + 1)))),
     rf"candidates: more than {MAX_CANDIDATES:,} entries"),
    ("too-many-bars",
     lambda e: run(e, suite_text(extra="bars:\n" + "  - base: exact_match >= 0.5\n" * (MAX_BARS + 1))),
     rf"bars: more than {MAX_BARS:,} entries"),
    ("too-many-checks",
     lambda e: run(e, suite_text(checks="checks:\n" + "  - exact_match\n" * (MAX_CHECKS + 1))),
     rf"checks: more than {MAX_CHECKS:,} entries"),
    ("unknown-slice-field",
     lambda e: run(e, suite_text(extra="slices: [output.categroy]\n")),
     r"s\.yaml: slices\.0: field 'output\.categroy' is in no item of .*eval\.jsonl"),
    # -- prompt templates: bounded in time, steps and size, naming the template
    ("range-bomb",
     lambda e: run(e, suite_text(prompt=template("{% for i in range(10**9) %}x{% endfor %}"))),
     r"s\.yaml: prompt\.user\) stopped: range\(1000000000\)"),
    ("nested-loop",
     lambda e: run(e, suite_text(prompt=template(
         "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))),
     r"prompt\.user\) stopped: its loops ran more than"),
    ("string-multiply-bomb",
     lambda e: run(e, suite_text(prompt=template("{{ 'x' * 10**9 }}"))),
     r"prompt\.user\) stopped: '\*' would make 1,000,000,000"),
    ("power-bomb",
     lambda e: run(e, suite_text(prompt=template("{{ 2 ** 1000000000 }}"))),
     r"prompt\.user\) stopped: '\*\*' would make a number"),
    ("doubling-in-a-loop",
     lambda e: run(e, suite_text(prompt=template(
         "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"))),
     r"prompt\.user\) stopped: namespace attribute s made a value"),
    ("padding-bomb",
     lambda e: run(e, suite_text(prompt=template("{{ input|center(10**9) }}"))),
     r"prompt\.user\) stopped: filter center\(1000000000\)"),
    ("candidate-template-bomb",
     lambda e: run(e, suite_text(candidates=CANDIDATE + "    prompt: {user: \"{{ 'ab' * 10**9 }}\"}\n")),
     r"candidate 'base' prompt\.user\) stopped"),
    ("template-nesting-too-deep",
     lambda e: run(e, suite_text(prompt=template("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"))),
     r"s\.yaml:\d+: prompt\.user: the template nests brackets too deeply"),
    ("too-many-field-accuracy-fields",
     lambda e: run(e, suite_text(checks="checks:\n  - field_accuracy: {fields: [" +
                                 ", ".join(f"f{i}" for i in range(50_000)) + "]}\n")),
     r"field_accuracy\.fields lists 50,000 fields, over the limit"),
    # -- regex checks: RE2 syntax, compiled at load
    ("regex-backreference",
     lambda e: run(e, suite_text(checks="checks:\n  - regex: {pattern: '(a)\\1'}\n")),
     r"regex pattern .* is invalid: .*RE2"),
    ("regex-syntax",
     lambda e: run(e, suite_text(checks="checks:\n  - regex: {pattern: '(a'}\n")),
     r"regex pattern '\(a' is invalid"),
    # -- files that are not regular files: refused before opening
    ("fifo-suite", lambda e: ["run", str(e.fifo("suites/pipe.yaml"))], r"pipe\.yaml: YAML file is a FIFO"),
    ("fifo-dataset",
     lambda e: run(e, suite_text(dataset=f"path: {e.fifo('data/pipe.jsonl')}")),
     r"pipe\.jsonl: dataset file is a FIFO"),
    ("fifo-train-path",
     lambda e: run(e, suite_text(dataset=f"path: ../data/eval.jsonl\n  train_path: {e.fifo('data/train.jsonl')}")),
     r"train\.jsonl: dataset file is a FIFO"),
    ("fifo-mock-outputs",
     lambda e: run(e, suite_text(candidates=CANDIDATE.replace("{echo: expected}",
                                                               f"{{outputs: {e.fifo('out.jsonl')}}}"))),
     r"out\.jsonl: backend mock: outputs file \(options\.outputs\) is a FIFO"),
    ("fifo-json-schema",
     lambda e: run(e, suite_text(checks=f"checks:\n  - json_schema: {e.fifo('schema.json')}\n")),
     r"schema\.json: json_schema file is a FIFO"),
    ("fifo-rubric",
     lambda e: run(e, suite_text(extra=judges(e.fifo("rubrics/pipe.yaml")))),
     r"judges\.0\.rubric: .*pipe\.yaml: YAML file is a FIFO"),
    ("fifo-labels",
     lambda e: run(e, suite_text(extra=judges(rubric_file(e), e.fifo("labels.jsonl")))),
     r"judges\.0\.labels: .*labels\.jsonl: labels file is a FIFO"),
    ("directory-dataset",
     lambda e: run(e, suite_text(dataset=f"path: {e.root / 'data'}")),
     r"data: dataset file is a directory"),
    ("device-dataset",
     lambda e: run(e, suite_text(dataset="path: /dev/zero")),
     r"/dev/zero: dataset file is a character device"),
    ("fifo-train-config", lambda e: ["train", str(e.fifo("train.yaml"))], r"train\.yaml: YAML file is a FIFO"),
]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    write_jsonl(tmp_path / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    (tmp_path / "suites").mkdir()
    return Env(root=tmp_path)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_evalkit(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m evalkit ARGV`` from scratch under the memory limit and the hang guard."""
    return subprocess.run([sys.executable, "-m", "evalkit", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=HANG_GUARD_S, preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)


FORK_SERVER = """
import json, os, resource, signal, sys, time
import evalkit.cli, evalkit.api, evalkit.runner, evalkit.commands.run, evalkit.suite.check  # once, not per case
limit, guard = int(sys.argv[1]), float(sys.argv[2])
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the case: the CLI's main under the memory limit, stderr to a file
        code = 99
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            os.chdir(request["cwd"])
            os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = evalkit.cli.main(request["argv"])
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + guard
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print(json.dumps({"code": None}), flush=True)
    else:
        print(json.dumps({"code": os.waitstatus_to_exitcode(done[1])}), flush=True)
"""
"""Imports evalkit once, then forks one process per case (a case costs a fork, not an interpreter's start)."""


@dataclass
class Forked:
    """What one forked case returned."""

    returncode: int | None
    stderr: str


class ForkServer:
    """Runs :data:`FORK_SERVER` and sends it one case at a time."""

    def __init__(self, home: Path) -> None:
        # Started before the per-test store fixture applies: its own store and home, never the user's.
        env = dict(os.environ, EVALKIT_STORE=str(home / "evalkit.db"), EVALKIT_HOME=str(home))
        self.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(MEMORY_LIMIT), str(HANG_GUARD_S)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)

    def run(self, argv: list[str], cwd: Path) -> Forked:
        """Run the CLI's main on ``argv`` in a forked process; returncode None when the hang guard fired."""
        assert self.process.stdin is not None and self.process.stdout is not None
        stderr = cwd / "stderr.txt"
        self.process.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "stderr": str(stderr)}) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, "the fork server died"
        return Forked(returncode=json.loads(reply)["code"], stderr=stderr.read_text())

    def close(self) -> None:
        """Stop the server."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=HANG_GUARD_S)


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("fork-server-home"))
    yield server
    server.close()


def run_directories(root: Path) -> list[Path]:
    """Anything a failed run may have written under the suite's output folder."""
    reports = root / "reports"
    return sorted(reports.rglob("*")) if reports.exists() else []


def test_the_table_covers_every_kind_of_hostile_input() -> None:
    assert len(CASES) >= 25
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)
    kinds = {case_id.split("-")[0] for case_id, _, _ in CASES}
    assert {"duplicate", "alias", "huge", "range", "nested", "string", "regex", "fifo"} <= kinds


@pytest.mark.parametrize(("setup", "message"), [(s, m) for _, s, m in CASES], ids=[c for c, _, _ in CASES])
def test_a_hostile_suite_exits_2_in_a_few_lines_within_bounds(
    env: Env, fork_server: ForkServer, setup: Callable[[Env], list[str]], message: str,
) -> None:
    argv = setup(env)
    proc = fork_server.run(argv, env.root)
    err = proc.stderr.strip()
    assert proc.returncode is not None, f"hung: still running after {HANG_GUARD_S} s"
    assert proc.returncode == 2, err
    assert 1 <= len(err.splitlines()) <= 3, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert re.search(message, err), err
    assert run_directories(env.root) == []


def test_a_duplicate_bars_key_names_both_lines_in_a_fresh_process(env: Env) -> None:
    # From scratch, as the shell runs it: the exit code and the one line the user sees.
    text = suite_text(extra="bars:\n  - base: exact_match >= 0.99\nbars:\n  - base: exact_match >= 0.0\n")
    proc = run_evalkit(run(env, text), env.root)
    lines = text.splitlines()
    first, second = (n for n, line in enumerate(lines, start=1) if line == "bars:")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"s.yaml:{second}: duplicate key 'bars' (first at line {first}); remove one" in proc.stderr
    assert run_directories(env.root) == []


def test_a_catastrophic_regex_is_scored_not_hung(env: Env) -> None:
    # ^(a+)+$ against 35 a's and a b backtracks for hours in Python's re; RE2 answers at once.
    outputs = env.root / "outputs.jsonl"
    write_jsonl(outputs, [{"id": "1", "output": "a" * 35 + "b"}, {"id": "2", "output": "a" * 35}])
    text = suite_text(candidates=CANDIDATE.replace("{echo: expected}", f"{{outputs: {outputs}, default: ''}}"),
                      checks="checks:\n  - regex: {pattern: '^(a+)+$'}\n")
    proc = run_evalkit(run(env, text, "--json", str(env.root / "run.json")), env.root)
    assert proc.returncode in (0, 1), proc.stderr
    results = [json.loads(line) for line in next((env.root / "reports").rglob("results.jsonl")).read_text().splitlines()
               if line.strip()]
    scores = {row["item_id"]: row["scores"]["regex"] for row in results}
    assert scores["1"]["value"] == 0.0 and "does not match" in scores["1"]["reason"]
    assert scores["2"]["value"] == 1.0
