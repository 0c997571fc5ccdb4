"""The check registry, the one contract every check follows, and the built-in checks.

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
:class:`evalkit.registry.Registry`, filled by the decorator alone: the built-in checks
register below, where they are defined, and a name the registry lacks loads the
installed plugins.

Also here:

* The built-in checks: :func:`exact_match`, :func:`json_valid`, :func:`json_schema`, :func:`field_accuracy`,
  :func:`regex`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jsonschema

from evalkit.errors import ConfigError
from evalkit.files.yaml_source import refuse_non_regular_file
from evalkit.record.run_facts import METRIC_KIND_NAMES, MetricDeclaration, MetricKind
from evalkit.registry import Registry, UnknownName

# Names other modules import from here though they are defined elsewhere.
__all__ = ["MetricDeclaration", "MetricKind"]


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


CHECKS: Registry[RegisteredCheck] = Registry("check", builtin_modules=("evalkit.checks.registry",))
"""Every check by name: the built-in ones register in this module, plugins' on first lookup."""


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


# The built-in checks: exact_match, json_valid, json_schema, field_accuracy, regex.

def parse_json_object(text: str) -> tuple[Any, str]:
    """Parse a prediction as JSON.

    Returns:
        The parsed value (None on failure) and the reason it failed ("" on success).
    """
    try:
        return json.loads(text.strip()), ""
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "not JSON evalkit can read: nested deeper than the parser allows"


MAX_FIELDS = 256
"""The most fields ``field_accuracy.fields`` may name (each is a metric of every item)."""
REASON_VALUE_CHARS = 120
"""How much of a value a reason quotes: a 1 MB field must not make a 1 MB reason."""


def shown_value(value: Any) -> str:
    """Return ``repr(value)``, cut to ``REASON_VALUE_CHARS`` characters with a note of the rest."""
    try:
        text = repr(value)
    except RecursionError:
        return "(a value nested too deeply to show)"
    if len(text) <= REASON_VALUE_CHARS:
        return text
    return f"{text[:REASON_VALUE_CHARS]}... ({len(text) - REASON_VALUE_CHARS:,} more characters)"


def _unexpected_options(name: str, options: Mapping[str, Any], allowed: set[str], ctx: CheckContext) -> None:
    extra = sorted(set(options) - allowed)
    if extra:
        raise ConfigError(
            f"{ctx.source}: check '{name}' has unknown option(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )


EXACT_MATCH_JSON = ("text", "canonical")
"""``exact_match``'s ``json:`` modes: compare the texts, or the JSON values when both parse."""


def _flag(name: str, options: Mapping[str, Any], key: str, default: bool, context: CheckContext) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{context.source}: check '{name}' option {key}: write true or false, not {value!r}")
    return value


def _canonical_json(text: str) -> str | None:
    value, reason = parse_json_object(text)
    if reason:
        return None
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):  # NaN is JSON to Python's reader; nesting is bounded above
        return None


@check("exact_match", kind="binary")
def exact_match(options: dict[str, Any], context: CheckContext) -> Check:
    """Prediction equals the reference, after the normalisation the options ask for.

    Options (the defaults are the check's behaviour without options):
        strip: drop surrounding whitespace from both first (default true).
        case: case counts (default true); ``false`` compares them lowercased (``casefold``).
        json: ``text`` (default) compares the texts; ``canonical`` compares the JSON values
            when the reference is JSON: key order, spacing and escapes do not count, and a
            prediction that is not JSON scores 0 saying so.
    """
    _unexpected_options("exact_match", options, {"strip", "case", "json"}, context)
    strip = _flag("exact_match", options, "strip", True, context)
    case = _flag("exact_match", options, "case", True, context)
    mode = options.get("json", "text")
    if mode not in EXACT_MATCH_JSON:
        raise ConfigError(f"{context.source}: check 'exact_match' option json: use one of "
                          f"{', '.join(EXACT_MATCH_JSON)}, not {mode!r}")

    def normalised(text: str) -> str:
        text = text.strip() if strip else text
        return text if case else text.casefold()

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        if mode == "canonical":
            expected = _canonical_json(reference)
            if expected is not None:
                given = _canonical_json(prediction)
                if given is None:
                    return {"exact_match": Score(0.0, "not JSON (json: canonical compares JSON values)")}
                prediction, reference = given, expected
        if normalised(prediction) == normalised(reference):
            return {"exact_match": Score(1.0)}
        return {"exact_match": Score(0.0, "differs from the expected output")}

    return score


@check("json_valid", kind="binary")
def json_valid(options: dict[str, Any], context: CheckContext) -> Check:
    """The prediction parses as JSON."""
    _unexpected_options("json_valid", options, set(), context)

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        _, reason = parse_json_object(prediction)
        return {"json_valid": Score(0.0 if reason else 1.0, reason)}

    return score


@check("json_schema", kind="binary")
def json_schema(options: dict[str, Any], context: CheckContext) -> Check:
    """The prediction is JSON that validates against a JSON schema file.

    Options: ``value`` or ``path``: the schema file, relative to the suite file.
    """
    _unexpected_options("json_schema", options, {"value", "path"}, context)
    relative = options.get("path", options.get("value"))
    if not isinstance(relative, str):
        raise ConfigError(f"{context.source}: json_schema needs a schema file: `- json_schema: schemas/x.json`")
    schema_path = (context.base_dir / relative).resolve()
    refuse_non_regular_file(schema_path, "json_schema file", ConfigError)
    if not schema_path.is_file():
        raise ConfigError(f"{context.source}: json_schema file {schema_path} not found; check the path")
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except (json.JSONDecodeError, jsonschema.SchemaError) as exc:
        raise ConfigError(f"{schema_path}: not a valid JSON schema: {exc}") from None
    validator = validator_class(schema)

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        value, reason = parse_json_object(prediction)
        if reason:
            return {"json_schema": Score(0.0, reason)}
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return {"json_schema": Score(0.0, f"schema violation at {where}: {error.message}")}
        return {"json_schema": Score(1.0)}

    return score


@check("field_accuracy", kind="continuous", metric_kinds={"field_accuracy.*": "binary"})
def field_accuracy(options: dict[str, Any], context: CheckContext) -> Check:
    """Per-field accuracy of a JSON object prediction against the reference object.

    Emits ``field_accuracy.<field>`` per field of the reference (1 when equal) and
    ``field_accuracy``, the share of fields right on the item. Options: ``fields``, a
    list restricting which fields count (default: every field of the reference).
    """
    _unexpected_options("field_accuracy", options, {"fields"}, context)
    only = options.get("fields")
    if only is not None and not (isinstance(only, list) and all(isinstance(f, str) for f in only)):
        raise ConfigError(f"{context.source}: field_accuracy.fields must be a list of field names")
    if only is not None and len(only) > MAX_FIELDS:
        # Every field is a metric of every item: a huge list would make millions of scores.
        raise ConfigError(f"{context.source}: field_accuracy.fields lists {len(only):,} fields, over the limit "
                          f"of {MAX_FIELDS:,}; name the fields that matter")

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        expected, ref_reason = parse_json_object(reference)
        if ref_reason or not isinstance(expected, dict):
            return {"field_accuracy": Score(0.0, "the reference is not a JSON object")}
        fields = list(only) if only is not None else list(expected)
        got, reason = parse_json_object(prediction)
        if not reason and not isinstance(got, dict):
            reason = "prediction is JSON but not an object"
        scores: dict[str, Score] = {}
        right = 0
        for name in fields:
            if reason:
                scores[f"field_accuracy.{name}"] = Score(0.0, reason)
                continue
            assert isinstance(got, dict)
            if name not in got:
                scores[f"field_accuracy.{name}"] = Score(0.0, f"field '{name}' missing")
            elif got[name] != expected.get(name):
                scores[f"field_accuracy.{name}"] = Score(
                    0.0, f"{name}: expected {shown_value(expected.get(name))}, got {shown_value(got[name])}"
                )
            else:
                scores[f"field_accuracy.{name}"] = Score(1.0)
                right += 1
        share = right / len(fields) if fields else 0.0
        scores["field_accuracy"] = Score(share, reason or ("" if share == 1.0 else "some fields differ"))
        return scores

    return score


def compile_linear_regex(pattern: str, where: str) -> Any:
    """Compile ``pattern`` with RE2, whose matching takes time linear in the text.

    Python's ``re`` backtracks: ``^(a+)+$`` on 35 characters never returns, and a suite
    (or a model's output) must not be able to hang a run. RE2 has no backreferences
    and no lookaround; such a pattern is refused here, at load.

    Raises:
        ConfigError: the pattern is not valid RE2 syntax; the message names ``where``.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(f"{where}: regex pattern {shown_value(pattern)} is invalid: {detail} "
                          "(evalkit matches with RE2: no backreferences or lookaround; see docs/checks.md)") from None


@check("regex", kind="binary")
def regex(options: dict[str, Any], context: CheckContext) -> Check:
    """The prediction matches a regular expression (RE2 syntax, searched like ``re.search``).

    Options: ``pattern`` (or the bare value), ``name`` for the metric (default
    ``regex``), ``full`` to require the whole stripped prediction to match. Matching
    uses RE2 (:func:`compile_linear_regex`), so it takes time linear in the output.
    """
    _unexpected_options("regex", options, {"value", "pattern", "name", "full"}, context)
    pattern = options.get("pattern", options.get("value"))
    if not isinstance(pattern, str):
        raise ConfigError(f"{context.source}: regex needs a pattern: `- regex: {{pattern: '...'}}`")
    compiled = compile_linear_regex(pattern, str(context.source))
    metric = str(options.get("name", "regex"))
    full = bool(options.get("full", False))
    mismatch = f"does not match /{pattern}/" if len(pattern) <= REASON_VALUE_CHARS else \
        f"does not match the pattern {shown_value(pattern)}"

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        text = prediction.strip()
        try:
            matched = compiled.fullmatch(text) if full else compiled.search(text)
        except Exception as exc:  # the engine failing on one output (a lone surrogate) is that output's score
            return {metric: Score(0.0, f"regex could not be matched: {exc.__class__.__name__}: {exc}")}
        return {metric: Score(1.0) if matched else Score(0.0, mismatch)}

    return score
