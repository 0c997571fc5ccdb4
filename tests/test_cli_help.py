"""Every command's --help has a description, examples and the exit codes; --json means one thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import build_parser, main

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_description_example_and_exit_codes(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([command, "--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    assert parser.description
    assert "examples:\n  evalkit " in text
    assert "exit codes:" in text and "\n  2 " in text


def test_every_json_option_takes_a_file() -> None:
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        stack = [(name, sub)]
        while stack:
            label, current = stack.pop()
            for action in current._actions:
                if "--json" in action.option_strings:
                    assert action.metavar == "FILE", label
                    assert action.nargs == "?" and action.const == "-", label
                if action.choices and isinstance(action.choices, dict):
                    stack += [(f"{label} {k}", v) for k, v in action.choices.items()]


def test_schema_out_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "suite.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "evalkit suite"


def test_help_examples_name_files_the_repository_has() -> None:
    from evalkit.commands.console import COMMAND_EXAMPLES

    repo = Path(__file__).resolve().parents[1]
    for command, examples in COMMAND_EXAMPLES.items():
        for example in examples:
            for word in example.split():
                if word.endswith((".yaml", ".jsonl")) and "/" in word and not word.startswith("/"):
                    assert (repo / word).exists(), f"evalkit {command} --help names {word}, which does not exist"
