"""`evalkit train CONFIG`, `evalkit merge ADAPTER --out DIR`, and `evalkit data`: the data before them.

* `evalkit data classifier --out DIR [--count N --seed S]`: make the classifier data
* `evalkit data lint FILE [--config TRAIN.yaml] [--force]`
* `evalkit data leakage TRAIN EVAL [--field input] [--threshold 0.5]`
* `evalkit data preferences [--train ...] [--suite ...] [--out ...]`

Also in this module:

* `evalkit parity SUITE`: HF vs vLLM agreement, merged vs adapter, and no-op adapter detection.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from evalkit.commands.console import add_json_option, console, emit_json, progress_reporter
from evalkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` and ``merge`` subcommands and the ``data`` check actions."""
    train = subparsers.add_parser(
        "train", help="train a LoRA adapter (SFT or DPO) from a train config",
        description="Lint the training data, check it for eval leakage, train a LoRA adapter with trl "
                    "and write it with its manifest to the config's output_dir.")
    train.add_argument("config", help="the training config YAML (see docs/training.md)")
    train.add_argument("--method", choices=["sft", "dpo"], help="override the config's method")
    train.add_argument("--qlora", action="store_true", help="load the base in 4-bit (needs a CUDA GPU)")
    train.add_argument("--out", help="write the adapter here instead of the config's output_dir")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer updates (a quick try)")
    train.add_argument("--force", action="store_true",
                       help="train despite data lint refusals, and replace an output directory that is not "
                            "empty and was not made by evalkit")
    train.set_defaults(handler=handle_train)

    merge = subparsers.add_parser(
        "merge", help="merge a LoRA adapter into its base as a standalone model",
        description="Fold an adapter into its base (merge_and_unload) and save a model directory that "
                    "loads like any Hugging Face model, with the adapter's manifest.")
    merge.add_argument("adapter", help="the adapter directory")
    merge.add_argument("--out", required=True, help="the merged model's directory")
    merge.add_argument("--model", help="the base model (default: the base recorded in the adapter)")
    merge.add_argument("--force", action="store_true",
                       help="replace --out even when it is not empty and was not made by evalkit")
    merge.set_defaults(handler=handle_merge)


def register_data(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` command group: make the classifier data, and the checks before training."""
    parser = subparsers.add_parser("data", help="make and check datasets")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True
    classifier = actions.add_parser("classifier", help="generate the customer-support classifier data")
    classifier.add_argument("--out", default="data/classifier", help="output directory (default: %(default)s)")
    classifier.add_argument("--count", type=int, default=800, help="examples in total (default: %(default)s)")
    classifier.add_argument("--seed", type=int, default=20261128, help="generator seed (default: %(default)s)")
    classifier.add_argument(
        "--extra-train",
        type=int,
        default=1200,
        help="messages generated for train only, after the split (default: %(default)s)",
    )
    classifier.set_defaults(handler=handle_classifier)
    register_data_checks(actions)


def handle_classifier(args: argparse.Namespace) -> int:
    """Generate and write the classifier train/eval split."""
    from evalkit.data.classifier_split import write_classifier_data

    if args.count < 100:
        raise ConfigError("--count: at least 100 examples are needed for a useful split")
    if args.extra_train < 0:
        raise ConfigError("--extra-train: must be 0 or more")
    train, evaluation = write_classifier_data(
        Path(args.out), count=args.count, seed=args.seed, extra_train=args.extra_train
    )
    console.print(f"wrote {train} and {evaluation}")
    return 0


def register_data_checks(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lint``, ``leakage`` and ``preferences`` to the ``evalkit data`` action group."""
    lint = actions.add_parser("lint", help="check training examples before training")
    lint.add_argument("file", help="the training JSONL/CSV")
    lint.add_argument("--config", help="a train config: its prompt, base tokenizer and max length are used")
    lint.add_argument("--force", action="store_true", help="exit 0 even when lint refuses the file")
    lint.set_defaults(handler=handle_lint)

    leakage = actions.add_parser("leakage", help="find eval items that are in the training data")
    leakage.add_argument("train", help="the training JSONL/CSV")
    leakage.add_argument("eval", help="the evaluation JSONL/CSV")
    leakage.add_argument("--field", default="input", help="the compared field (default: %(default)s)")
    leakage.add_argument("--threshold", type=float, default=0.5,
                         help="word-trigram overlap counted as a near duplicate (default: %(default)s)")
    leakage.set_defaults(handler=handle_leakage)

    preferences = actions.add_parser("preferences", help="generate the classifier DPO preference set")
    preferences.add_argument("--train", default="data/classifier/train.jsonl", help="default: %(default)s")
    preferences.add_argument("--suite", default="suites/classifier.yaml",
                             help="the suite whose prompt renders the pairs (default: %(default)s)")
    preferences.add_argument("--out", default="data/classifier/preferences.jsonl", help="default: %(default)s")
    preferences.add_argument("--pairs", type=int, default=240, help="default: %(default)s")
    preferences.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    preferences.set_defaults(handler=handle_preferences)


def handle_train(args: argparse.Namespace) -> int:
    """Train the adapter a config describes."""
    from evalkit.train.config import load_train_config, with_overrides

    if args.qlora:
        # Before anything is loaded: on a CPU-only machine QLoRA cannot run at all.
        from evalkit.train.lora import require_qlora_support

        require_qlora_support()
    config = load_train_config(args.config)
    output_dir = str(Path(args.out).resolve()) if args.out else None
    config = with_overrides(config, method=args.method, output_dir=output_dir, qlora=True if args.qlora else None,
                            max_steps=args.max_steps)
    from evalkit.train.candidates import train_adapter
    from evalkit.train.lora import ProgressReporter

    # Rich bars on a terminal; plain lines every 10% or 30 s in CI, as `evalkit run` prints.
    progress = progress_reporter()
    try:
        manifest = train_adapter(config, ProgressReporter(progress, loss_step=0.1), force=args.force,
                                 replace_output=args.force)
    finally:
        progress.close()
    console.print(f"adapter: {config.output_path} ({manifest.trainable_parameters:,} trainable parameters, "
                  f"{len(manifest.loss_curve)} logged steps, {manifest.seconds:.0f} s)", highlight=False)
    return 0


def handle_merge(args: argparse.Namespace) -> int:
    """Merge an adapter into its base."""
    from evalkit.train.lora import merge_adapter

    merge_adapter(Path(args.adapter), Path(args.out), model=args.model, force=args.force)
    console.print(f"merged model: {Path(args.out).resolve()}", highlight=False)
    return 0


def handle_lint(args: argparse.Namespace) -> int:
    """Lint a training file; exit 2 when it is refused (0 with --force)."""
    from evalkit.data.lint import lint_file

    path = Path(args.file).resolve()
    if args.config:
        from transformers import AutoTokenizer

        from evalkit.train.candidates import base_model
        from evalkit.train.config import load_train_config

        config = load_train_config(args.config)
        tokenizer = AutoTokenizer.from_pretrained(str(base_model(config).path))
        report = lint_file(path, config.prompt_template(), tokenizer, config.training.max_seq_length)
    else:
        report = lint_file(path)
    if report.findings:
        table = Table(title=f"lint: {path.name} ({report.examples} examples)")
        for column in ("severity", "rule", "finding"):
            table.add_column(column)
        for finding in report.findings:
            colour = "red" if finding.severity == "error" else "yellow"
            table.add_row(f"[{colour}]{finding.severity}[/]", finding.rule, escape(finding.message))
        console.print(table)
    if not args.config:
        console.print("example lengths not checked: pass --config TRAIN.yaml to check them", highlight=False)
    report.raise_if_refused(args.force)
    console.print(f"ok: {report.examples} examples, {len(report.warnings)} warnings", highlight=False)
    return 0


def handle_leakage(args: argparse.Namespace) -> int:
    """List eval items found in the training data; exit 2 when there are any."""
    from evalkit.data.items import find_leaks, leakage_error, load_items

    if not 0.0 < args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold}: use a value in (0, 1]")
    train, evaluation = Path(args.train).resolve(), Path(args.eval).resolve()
    train_items, eval_items = load_items(train), load_items(evaluation)
    leaks = find_leaks(train_items, eval_items, args.field, args.threshold)
    if not leaks:
        console.print(f"no leakage: {len(eval_items)} eval items vs {len(train_items)} training items "
                      f"(field '{args.field}', threshold {args.threshold})", highlight=False)
        return 0
    table = Table(title=f"{len(leaks)} leaked pairs")
    for column in ("eval line", "train line", "overlap", "eval text", "train text"):
        table.add_column(column)
    for leak in leaks:
        overlap = "exact" if leak.exact else f"{leak.overlap:.2f}"
        table.add_row(str(leak.eval_line), str(leak.train_line), overlap, escape(leak.eval_text),
                      escape(leak.train_text))
    console.print(table)
    raise leakage_error(train, evaluation, leaks)


def handle_preferences(args: argparse.Namespace) -> int:
    """Generate the classifier DPO preference set from the training split."""
    from evalkit.data.classifier_split import make_preferences, write_preferences
    from evalkit.data.items import load_items
    from evalkit.prompting import prompt_for_candidate
    from evalkit.suite.config import CandidateConfig, load_suite

    suite = load_suite(args.suite)
    template = prompt_for_candidate(suite, CandidateConfig(name="preferences", model="unused"))
    train = Path(args.train).resolve()
    rows = make_preferences(load_items(train), template, train, pairs=args.pairs, seed=args.seed)
    out = write_preferences(rows, Path(args.out))
    console.print(f"wrote {len(rows)} preference pairs to {out}", highlight=False)
    return 0


# `evalkit parity SUITE`: HF vs vLLM agreement, merged vs adapter, and no-op adapter detection.


def register_parity(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``parity`` subcommand."""
    parser = subparsers.add_parser(
        "parity", help="compare HF and vLLM outputs, merged models and adapters against their bases"
    )
    parser.add_argument("suite", help="the suite YAML file")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items (default: all)")
    parser.add_argument("--min-agreement", type=float, default=0.9,
                        help="agreement rate under which a gap is a problem (default: 0.9)")
    add_json_option(parser, "the parity section")
    parser.set_defaults(handler=handle_parity)


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


def handle_parity(args: argparse.Namespace) -> int:
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
    section = report.model_dump(mode="json")
    if not emit_json(args.json_out, section):
        console.print(parity_table(section))
        for problem in report.problems:
            console.print(f"[red]problem:[/red] {problem}")
    return 1 if report.problems else 0
