"""Deterministic checks, registered by name and referenced from suite YAML.

A check is a factory: given the options written in the suite (and the suite's
directory, for files such as a JSON schema) it returns a callable that scores one
prediction against its reference. :mod:`evalkit.checks.registry` holds the contract,
the registry and the built-in checks, which register with the ``@check`` decorator
where they are defined; :mod:`evalkit.checks.sampling` is repeated sampling (pass@k,
flaky items).
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
