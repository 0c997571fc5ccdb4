"""`evalkit plugins`: what each extension seam has registered, and where each entry comes from.

Lists the checks, backends, judge providers and run stages (in the order they run), each
with the ``module:function`` that defines it and its source: ``evalkit`` for a built-in,
else the installed distribution that provides it (a plugin, docs/plugins.md). Listing
imports every built-in module and every installed plugin, so a plugin that fails to
import is reported here (exit 2) as it would be by a run.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rich.markup import escape

from evalkit.commands.console import add_json_option, console, emit_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from evalkit.judges.providers import JUDGE_PROVIDERS
    from evalkit.models.backend_registry import BACKENDS
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
