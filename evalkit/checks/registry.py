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

A check declares, when it registers, the kind of its metrics (``binary`` pass/fail,
``continuous``, ``ordinal``) and their direction::

    @check("exact_match", kind="binary")
    @check("field_accuracy", kind="continuous", metric_kinds={"field_accuracy.*": "binary"})

The run records what each emitted metric was declared as (``sections["metric_kinds"]``)
and the comparison picks its paired test from that, never from the values
(:func:`evalkit.comparison.paired.metric_kind`). The names live in :data:`CHECKS`, one
:class:`evalkit.registry.Registry`, filled by the decorator alone: the first lookup imports
:mod:`evalkit.checks.builtin` (and, for a name it lacks, the installed plugins), so
importing this module imports no check.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalkit.errors import ConfigError
from evalkit.record.run_facts import METRIC_KIND_NAMES, MetricDeclaration, MetricKind
from evalkit.registry import Registry, UnknownName

__all__ = ["CHECKS", "METRIC_KINDS", "BuiltCheck", "Check", "CheckContext", "CheckFactory", "MetricDeclaration",
           "MetricKind", "RegisteredCheck", "Score", "build_check", "check", "check_names", "metric_declarations",
           "never_raising", "registered_checks"]


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

METRIC_KINDS: tuple[MetricKind, ...] = METRIC_KIND_NAMES
"""Every kind a check may declare (:data:`evalkit.record.run_facts.MetricKind`)."""


@dataclass(frozen=True)
class RegisteredCheck:
    """A check factory with the declaration of the metrics it emits.

    Attributes:
        name: the name suites use.
        factory: options, context -> :class:`Check`.
        declaration: the kind and direction of its metrics.
        metric_kinds: kinds of metrics that differ from ``declaration.kind``, by
            ``fnmatch`` pattern (``{"field_accuracy.*": "binary"}``).
    """

    name: str
    factory: CheckFactory
    declaration: MetricDeclaration
    metric_kinds: Mapping[str, MetricKind] = field(default_factory=dict)

    def __call__(self, options: dict[str, Any], context: CheckContext) -> Check:
        """Build the check (the factory's contract)."""
        return self.factory(options, context)

    def declaration_for(self, metric: str) -> MetricDeclaration:
        """Return the declaration of one metric this check emits."""
        for pattern, kind in self.metric_kinds.items():
            if fnmatch.fnmatchcase(metric, pattern):
                return MetricDeclaration(kind=kind, higher_is_better=self.declaration.higher_is_better)
        return self.declaration


CHECKS: Registry[RegisteredCheck] = Registry("check", builtin_modules=("evalkit.checks.builtin",))
"""Every check by name: the built-in ones register in :mod:`evalkit.checks.builtin`, imported on first lookup."""


def check(
    name: str,
    *,
    kind: MetricKind,
    higher_is_better: bool = True,
    metric_kinds: Mapping[str, MetricKind] | None = None,
) -> Callable[[CheckFactory], RegisteredCheck]:
    """Register a check factory under ``name`` (a decorator), declaring its metrics.

    Args:
        name: the name suites use.
        kind: the kind of the metrics it emits: ``binary``, ``continuous`` or ``ordinal``.
        higher_is_better: the direction of its metrics.
        metric_kinds: metrics (``fnmatch`` patterns) whose kind differs from ``kind``.

    Raises:
        DuplicateName: another check is registered under ``name``.
        ValueError: ``kind`` is not one of :data:`METRIC_KINDS`.
    """
    for declared in (kind, *(metric_kinds or {}).values()):
        if declared not in METRIC_KINDS:
            raise ValueError(f"check {name!r}: kind {declared!r} is not one of {', '.join(METRIC_KINDS)}")

    def register(factory: CheckFactory) -> RegisteredCheck:
        registered = RegisteredCheck(name, factory, MetricDeclaration(kind=kind, higher_is_better=higher_is_better),
                                     dict(metric_kinds or {}))
        # The entry stands for the factory's module-level name, so `module:name` references match it.
        object.__setattr__(registered, "__module__", factory.__module__)
        object.__setattr__(registered, "__qualname__", factory.__qualname__)
        object.__setattr__(registered, "__doc__", factory.__doc__)
        CHECKS.register(name, registered)
        return registered

    return register


def check_names() -> list[str]:
    """Return the registered check names (built-in and plugins'), sorted."""
    return CHECKS.names()


def registered_checks() -> dict[str, RegisteredCheck]:
    """Return check name -> registered check, importing every check module."""
    return dict(CHECKS.items())


class BuiltCheck:
    """A check built for one run: scores items, never raises, remembers the metrics it emitted."""

    def __init__(self, registered: RegisteredCheck, scorer: Check) -> None:
        self.registered = registered
        self.emitted: set[str] = set()
        self._score = never_raising(registered.name, scorer)

    @property
    def name(self) -> str:
        """The check's registered name."""
        return self.registered.name

    def __call__(self, prediction: str, reference: str) -> Mapping[str, Score]:
        """Score one item (see :class:`Check`)."""
        scores = self._score(prediction, reference)
        self.emitted.update(scores)
        return scores

    def declarations(self) -> dict[str, MetricDeclaration]:
        """Return metric -> declaration for every metric this check has emitted."""
        return {metric: self.registered.declaration_for(metric) for metric in sorted(self.emitted)}


def metric_declarations(checks: Iterable[Check]) -> dict[str, dict[str, Any]]:
    """Return metric -> ``{kind, higher_is_better}`` for what the built checks emitted (JSON form)."""
    declared: dict[str, dict[str, Any]] = {}
    for built in checks:
        if isinstance(built, BuiltCheck):
            declared.update({m: d.model_dump(mode="json") for m, d in built.declarations().items()})
    return declared


def build_check(name: str, options: dict[str, Any], context: CheckContext) -> BuiltCheck:
    """Build a registered check from its suite options.

    Raises:
        ConfigError: the name is unknown or the options are invalid.
    """
    try:
        registered = CHECKS.get(name)
    except UnknownName as exc:
        raise ConfigError(f"{context.source}: {exc}") from None
    return BuiltCheck(registered, registered(options, context))


def never_raising(name: str, scorer: Check) -> Check:
    """Wrap a check so that no model output can make it raise: it scores 0 with the reason instead."""

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        try:
            return scorer(prediction, reference)
        except Exception as exc:  # any output becomes a score with a reason, never an exception
            reason = f"check '{name}' could not score this output ({type(exc).__name__}: {str(exc)[:200]})"
            return {name: Score(0.0, reason)}

    return score
