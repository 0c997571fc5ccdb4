"""The check registry and the one contract every check follows.

A check factory is registered with :func:`check` under a name. The suite refers to it
by that name, with options::

    checks:
      - exact_match
      - json_schema: schemas/classifier.json
      - regex: {pattern: '"severity": "(critical|high)"'}

``build_check(name, options, context)`` calls the factory once per run; the returned
:class:`Check` is called once per item with the prediction and the reference and
returns a mapping of metric name to :class:`Score`. Most checks return one metric
named like the check; ``field_accuracy`` returns one per JSON field as well. A check
that raises on some output scores 0 on the metric named like the check, with the error
as its reason: model output never aborts a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evalkit.errors import ConfigError


@dataclass(frozen=True)
class Score:
    """One metric's score on one item.

    Attributes:
        value: the score, 1.0 for a pass and 0.0 for a fail on pass/fail metrics.
        reason: why the item failed (empty when it passed).
    """

    value: float
    reason: str = ""

    @property
    def passed(self) -> bool:
        """True when the item scored full marks on a pass/fail metric."""
        return self.value >= 1.0


@dataclass(frozen=True)
class CheckContext:
    """What a check factory may need besides its options.

    Attributes:
        base_dir: the suite file's directory, for files named in options.
        source: a description of where the options came from, for error messages.
    """

    base_dir: Path
    source: str


class Check(Protocol):
    """Scores one prediction against its reference."""

    def __call__(self, prediction: str, reference: str) -> Mapping[str, Score]:
        """Return metric name -> score for this item."""
        ...


CheckFactory = Callable[[dict[str, Any], CheckContext], Check]

_REGISTRY: dict[str, CheckFactory] = {}


def check(name: str) -> Callable[[CheckFactory], CheckFactory]:
    """Register a check factory under ``name`` (a decorator)."""

    def register(factory: CheckFactory) -> CheckFactory:
        if name in _REGISTRY:
            raise ValueError(f"a check named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return register


def registered_checks() -> dict[str, CheckFactory]:
    """Return a copy of the registry: check name -> factory."""
    return dict(_REGISTRY)


def build_check(name: str, options: dict[str, Any], context: CheckContext) -> Check:
    """Build a registered check from its suite options.

    Raises:
        ConfigError: the name is unknown or the options are invalid.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(
            f"{context.source}: unknown check '{name}'; available: {', '.join(sorted(_REGISTRY))}"
        )
    return never_raising(name, factory(options, context))


def never_raising(name: str, scorer: Check) -> Check:
    """Wrap a check so that no model output can make it raise: it scores 0 with the reason instead."""

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        try:
            return scorer(prediction, reference)
        except Exception as exc:  # any output becomes a score with a reason, never an exception
            reason = f"check '{name}' could not score this output ({type(exc).__name__}: {str(exc)[:200]})"
            return {name: Score(0.0, reason)}

    return score
