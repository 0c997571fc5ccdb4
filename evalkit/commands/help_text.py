"""Every command's ``--help`` shows examples, from one table here.

:func:`add_examples` is called once by the CLI after the commands register: it gives
each command an epilog with its examples (the CLI appends the exit-code table after
them) and, where a parser has no description, its one-line help as one.
"""

from __future__ import annotations

import argparse

COMMAND_EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": ("evalkit run suites/classifier.yaml",
            "evalkit run suites/classifier.yaml --limit 20 --set generation.max_new_tokens=64",
            "evalkit run suites/classifier.yaml --json summary.json | cat"),
    "data": ("evalkit data classifier --out data/classifier",),
    "report": ("evalkit report RUN_ID", "evalkit report reports/classifier/RUN_ID --out report.html"),
    "compare": ("evalkit compare RUN_A RUN_B", "evalkit compare RUN --candidate lora --json comparison.json"),
    "history": ("evalkit history suites/classifier.yaml --metric 'field_accuracy.*'",
                "evalkit history classifier --json history.json"),
    "train": ("evalkit train train/classifier-lora.yaml",
              "evalkit train train/classifier-lora.yaml --max-steps 10 --out /tmp/try-lora"),
    "merge": ("evalkit merge train/classifier-lora --out adapters/classifier-lora-merged",),
    "parity": ("evalkit parity suites/classifier.yaml --limit 50 --json parity.json",),
    "rubric": ("evalkit rubric validate rubrics/classifier_quality.yaml",
               "evalkit rubric calibrate rubrics/classifier_quality.yaml --json calibration.json"),
    "export": ("evalkit export RUN_ID --out items.parquet",
               "evalkit export reports/classifier/RUN_ID --format csv --out items.csv"),
    "schema": ("evalkit schema > suite.schema.json",
               "evalkit schema --out .vscode/evalkit-suite.schema.json"),
    "plugins": ("evalkit plugins", "evalkit plugins --json plugins.json"),
    "view": ("evalkit view", "evalkit view --store runs/evalkit.db --rubric rubrics/classifier_quality.yaml",
             "evalkit view --read-only --host 0.0.0.0 --port 8765"),
    "labels": ("evalkit labels export --format calibration --rubric rubrics/classifier_quality.yaml --out labels.jsonl",
               "evalkit labels export --format dpo --out preferences.jsonl"),
}
"""Per command: example command lines. A command missing here shows ``evalkit NAME --help``."""


def examples_epilog(command: str) -> str:
    """Return the examples block of ``evalkit COMMAND --help``."""
    examples = COMMAND_EXAMPLES.get(command, (f"evalkit {command} --help",))
    return "\n".join(["examples:", *(f"  {example}" for example in examples)])


def add_examples(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give every registered command an examples epilog and, if missing, a description."""
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for name, parser in subparsers.choices.items():
        parser.epilog = examples_epilog(name) + (f"\n\n{parser.epilog}" if parser.epilog else "")
        if parser.formatter_class is argparse.HelpFormatter:
            parser.formatter_class = argparse.RawDescriptionHelpFormatter
        if not parser.description and helps.get(name):
            text = str(helps[name])
            parser.description = f"{text[:1].upper()}{text[1:]}."
