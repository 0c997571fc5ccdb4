"""Deterministic checks, registered by name and referenced from suite YAML.

A check is a factory: given the options written in the suite (and the suite's
directory, for files such as a JSON schema) it returns a callable that scores one
prediction against its reference. See :mod:`evalkit.checks.registry` for the contract.
"""

from evalkit.checks import builtin as _builtin  # noqa: F401  (registers the built-in checks)
from evalkit.checks.registry import (
    Check,
    CheckContext,
    Score,
    build_check,
    check,
    registered_checks,
)

__all__ = ["Check", "CheckContext", "Score", "build_check", "check", "registered_checks"]
