"""`evalkit models`: the models evalkit has on this machine, and where their directories are.

``evalkit models`` lists the embedded models (converted or not) and the GGUF files
evalkit converted, saying what each is; ``evalkit models path NAME`` prints a model's
Hugging Face directory (for training one's own adapter on it, or loading it with
transformers), converting an embedded model first with ``--convert``.

Also in this module:

* `evalkit plugins`: what each extension seam has registered, and where each entry comes from.
* `evalkit schema`: the suite file's JSON Schema, for editors (completion and checking of suite YAML).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rich.markup import escape

from evalkit.commands.console import add_json_option, console, emit_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``models`` subcommand (and its ``path`` action)."""
    parser = subparsers.add_parser(
        "models", help="list the embedded and cached models; `models path NAME` prints a model's directory",
        description="List the models evalkit has on this machine: the embedded ones (converted or not) and the "
                    "GGUF files it converted, each with what it is and its directory. `evalkit models path NAME` "
                    "prints one model's Hugging Face directory (for `model:` in your own training, or "
                    "from_pretrained); --convert makes it first when it is not converted yet.",
    )
    add_json_option(parser, "the models as a list of {name, description, path, source}")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    path = actions.add_parser("path", help="print a model's directory (exit 2 when it is not converted yet)")
    path.add_argument("name", help="the model: an embedded name (smollm2-135m-instruct) or a cached name")
    path.add_argument("--convert", action="store_true", help="convert the model first when it is not yet")
    path.set_defaults(handler=handle_path)
    parser.set_defaults(handler=handle_list)


def handle_list(args: argparse.Namespace) -> int:
    """List the models with what each is and where it is."""
    from evalkit.models.sources import cached_models

    models = cached_models()
    rows = [{"name": m.name, "description": m.description, "path": str(m.path) if m.path else None,
             "source": str(m.source) if m.source else None} for m in models]
    if emit_json(args.json_out, rows):
        return 0
    for model in models:
        console.print(f"[bold]{escape(model.name)}[/bold]: {escape(model.description)}", highlight=False)
        where = str(model.path) if model.path else "not converted yet (evalkit models path NAME --convert)"
        console.print(f"  directory: {escape(where)}", highlight=False, soft_wrap=True)
        if model.source:
            console.print(f"  converted from: {escape(str(model.source))}", highlight=False, soft_wrap=True)
    return 0


def handle_path(args: argparse.Namespace) -> int:
    """Print the model's directory alone on stdout (so ``$(evalkit models path NAME)`` works)."""
    from evalkit.models.sources import converted_model_path

    print(converted_model_path(args.name, convert=args.convert))
    return 0


# `evalkit plugins`: what each extension seam has registered, and where each entry comes from.
#
# Lists the checks, backends, judge providers and run stages (in the order they run), each
# with the ``module:function`` that defines it and its source: ``evalkit`` for a built-in,
# else the installed distribution that provides it (a plugin, docs/plugins.md). Listing
# imports every built-in module and every installed plugin, so a plugin that fails to
# import is reported here (exit 2) as it would be by a run.

def register_plugins(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plugins`` subcommand."""
    parser = subparsers.add_parser(
        "plugins", help="list the registered checks, backends, judge providers and stages, and where each comes from",
        description="List what each extension seam has registered: checks, backends, judge providers and run "
                    "stages (in run order), with the function or class defining each and its source: evalkit "
                    "for a built-in, else the installed distribution providing it (a plugin declared in the "
                    "evalkit.plugins entry point group; see docs/plugins.md).",
    )
    add_json_option(parser, "the entries as a list of {kind, name, defined_at, source}")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print every registered entry, seam by seam; exit 0 (2 when a plugin fails to import)."""
    from evalkit.checks.registry import CHECKS
    from evalkit.registry import BACKENDS, JUDGE_PROVIDERS
    from evalkit.stages import FINAL_STAGES, STAGES

    origins = [*CHECKS.origins(), *BACKENDS.origins(), *JUDGE_PROVIDERS.origins(),
               *STAGES.origins(), *FINAL_STAGES.origins()]
    if emit_json(args.json_out, [asdict(origin) for origin in origins]):
        return 0
    name_width = max(len(origin.name) for origin in origins)
    where_width = max(len(origin.defined_at) for origin in origins)
    kind = None
    for origin in origins:
        if origin.kind != kind:
            kind = origin.kind
            console.print(f"[bold]{escape(kind)}s[/bold]" + (" (in the order they run)" if kind == "stage" else ""),
                          highlight=False)
        console.print(f"  {escape(origin.name.ljust(name_width))}  {escape(origin.defined_at.ljust(where_width))}  "
                      f"[dim]{escape(origin.source)}[/dim]", highlight=False, soft_wrap=True)
    return 0


# `evalkit schema`: the suite file's JSON Schema, for editors (completion and checking of suite YAML).
#
# The schema is the suite model's own (:class:`evalkit.suite.config.SuiteConfig`), so it
# cannot drift from what ``evalkit run`` accepts. With the YAML language server, point a
# suite at it with a first line ``# yaml-language-server: $schema=suite.schema.json``.

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


def register_schema(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` subcommand."""
    parser = subparsers.add_parser(
        "schema", help="print the suite file's JSON Schema (for editor completion and checks)",
        description="Print the JSON Schema of a suite YAML file, generated from the same model that "
                    "validates suites, to stdout or to a file.",
    )
    parser.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    parser.set_defaults(handler=handle_schema)


def handle_schema(args: argparse.Namespace) -> int:
    """Print or write the schema; exit 0."""
    schema = suite_schema()
    if args.out:
        emit_json(args.out, schema)
        console.print(f"wrote the suite schema to {args.out}")
    else:
        print(json.dumps(schema, indent=2))
    return 0
