"""CLI subcommands; each entry names a module exposing ``register(subparsers)``, or ``module:function``.

Each registered parser sets ``handler`` (a function taking the parsed namespace and
returning an exit code) with ``parser.set_defaults(handler=...)``.
"""

COMMAND_MODULES = [
    "evalkit.commands.run",
    "evalkit.commands.train:register_data",
    "evalkit.commands.report",
    "evalkit.commands.report:register_compare",
    "evalkit.commands.report:register_history",
    "evalkit.commands.train",
    "evalkit.commands.train:register_parity",
    "evalkit.commands.rubric",
    "evalkit.commands.report:register_export",
    "evalkit.commands.models:register_schema",
    "evalkit.commands.models",
    "evalkit.commands.models:register_plugins",
    "evalkit.view.app",
]
