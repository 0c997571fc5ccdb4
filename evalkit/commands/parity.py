"""`evalkit parity SUITE`: HF vs vLLM agreement, merged vs adapter, and no-op adapter detection."""

from __future__ import annotations

import argparse

from rich.table import Table

from evalkit.commands.console import add_json_option, console, emit_json, progress_reporter
from evalkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``parity`` subcommand."""
    parser = subparsers.add_parser(
        "parity", help="compare HF and vLLM outputs, merged models and adapters against their bases"
    )
    parser.add_argument("suite", help="the suite YAML file")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items (default: all)")
    parser.add_argument("--min-agreement", type=float, default=0.9,
                        help="agreement rate under which a gap is a problem (default: 0.9)")
    add_json_option(parser, "the parity section")
    parser.set_defaults(handler=handle)


def parity_table(section: dict[str, object]) -> Table:
    """Return a rich table: one row per candidate with its agreement figures."""
    backends = section["backends"]
    merged = section["merged"]
    adapters = section["adapters"]
    assert isinstance(backends, dict) and isinstance(merged, dict) and isinstance(adapters, dict)
    table = Table(title=f"parity on {section['n_items']} items")
    for column in ("candidate", "HF = vLLM", "first divergence", "adapter changes (hf/vllm)", "merged = peft"):
        table.add_column(column)
    for name, comparison in backends.items():
        first = comparison["divergences"][0] if comparison["divergences"] else None
        where = f"{first['item_id']} @{first['position']}: {first['left_token']!r} vs {first['right_token']!r}" \
            if first else "–"
        effect = adapters.get(name)
        changes = f"{effect['changed'].get('hf', 0)}/{effect['changed'].get('vllm', 0)} of {effect['n']}" \
            if effect else "–"
        merge = f"{merged[name]['agreement_rate']:.0%}" if name in merged else "–"
        table.add_row(name, f"{comparison['agreement_rate']:.0%}", where, changes, merge)
    return table


def handle(args: argparse.Namespace) -> int:
    """Run the parity checks; exit 1 when a problem (no-op adapter, large gap) was found."""
    # Imported here: `evalkit --help` must not pay for torch.
    from evalkit.parity.checks import run_parity
    from evalkit.stages import load_inputs
    from evalkit.suite.config import load_suite

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    suite = load_suite(args.suite)
    progress = progress_reporter()
    try:
        report = run_parity(load_inputs(suite), limit=args.limit, progress=progress,
                            min_agreement=args.min_agreement)
    finally:
        progress.close()
    section = report.to_dict()
    if not emit_json(args.json_out, section):
        console.print(parity_table(section))
        for problem in report.problems:
            console.print(f"[red]problem:[/red] {problem}")
    return 1 if report.problems else 0
