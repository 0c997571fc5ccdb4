"""Deterministic checks, registered by name and referenced from suite YAML.

A check is a factory: given the options written in the suite (and the suite's
directory, for files such as a JSON schema) it returns a callable that scores one
prediction against its reference. See :mod:`evalkit.checks.registry` for the contract.
The built-in checks (:mod:`evalkit.checks.builtin`) register with the ``@check``
decorator; the registry imports that module on its first lookup, not this package.
"""

from evalkit.checks.registry import (
    CHECKS,
    BuiltCheck,
    Check,
    CheckContext,
    MetricDeclaration,
    MetricKind,
    RegisteredCheck,
    Score,
    build_check,
    check,
    check_names,
    metric_declarations,
    registered_checks,
)

__all__ = [
    "CHECKS",
    "BuiltCheck",
    "Check",
    "CheckContext",
    "MetricDeclaration",
    "MetricKind",
    "RegisteredCheck",
    "Score",
    "build_check",
    "check",
    "check_names",
    "metric_declarations",
    "registered_checks",
]
