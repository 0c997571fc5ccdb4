"""`evalkit data ...`: make and inspect datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalkit.commands.console import console
from evalkit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` command group."""
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
    DATA_ACTIONS.append(actions)


# Other modules add `data` actions (lint, leakage) through this handle.
DATA_ACTIONS: list[argparse._SubParsersAction[argparse.ArgumentParser]] = []


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
