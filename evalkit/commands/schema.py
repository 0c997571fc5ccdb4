"""`evalkit schema`: the suite file's JSON Schema, for editors (completion and checking of suite YAML).

The schema is the suite model's own (:class:`evalkit.suite.config.SuiteConfig`), so it
cannot drift from what ``evalkit run`` accepts. With the YAML language server, point a
suite at it with a first line ``# yaml-language-server: $schema=suite.schema.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from evalkit.commands.console import console, emit_json

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def suite_schema() -> dict[str, Any]:
    """Return the JSON Schema of a suite file (draft 2020-12)."""
    from evalkit.suite.config import SuiteConfig

    schema = SuiteConfig.model_json_schema(mode="validation")
    schema["title"] = "evalkit suite"
    _add_shorthands(schema["properties"])
    return {"$schema": SCHEMA_DIALECT, **schema}


def _one_key_object(key_schema: dict[str, Any], value_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "minProperties": 1, "maxProperties": 1,
            "propertyNames": key_schema, "additionalProperties": value_schema}


def _add_shorthands(properties: dict[str, Any]) -> None:
    """Add the short forms the suite's before-validators accept (the model's schema shows the long ones).

    ``checks:`` entries are a check's name or ``{name: options}``; ``bars:`` entries are
    ``{CANDIDATE: EXPRESSION}``.
    """
    from evalkit.checks import check_names

    names = {"enum": check_names()}
    checks = properties.get("checks")
    if checks and "items" in checks:
        checks["items"] = {"anyOf": [checks["items"], names, _one_key_object(names, {})]}
    bars = properties.get("bars")
    if bars and "items" in bars:
        bars["items"] = {"anyOf": [bars["items"], _one_key_object({"type": "string"}, {"type": "string"})]}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` subcommand."""
    parser = subparsers.add_parser(
        "schema", help="print the suite file's JSON Schema (for editor completion and checks)",
        description="Print the JSON Schema of a suite YAML file, generated from the same model that "
                    "validates suites, to stdout or to a file.",
    )
    parser.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print or write the schema; exit 0."""
    schema = suite_schema()
    if args.out:
        emit_json(args.out, schema)
        console.print(f"wrote the suite schema to {args.out}")
    else:
        print(json.dumps(schema, indent=2))
    return 0
