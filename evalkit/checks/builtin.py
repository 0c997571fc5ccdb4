"""The built-in checks: exact_match, json_valid, json_schema, field_accuracy, regex."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from evalkit.checks.registry import Check, CheckContext, Score, check
from evalkit.errors import ConfigError
from evalkit.files.yaml_source import refuse_non_regular_file


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
        for field in fields:
            if reason:
                scores[f"field_accuracy.{field}"] = Score(0.0, reason)
                continue
            assert isinstance(got, dict)
            if field not in got:
                scores[f"field_accuracy.{field}"] = Score(0.0, f"field '{field}' missing")
            elif got[field] != expected.get(field):
                scores[f"field_accuracy.{field}"] = Score(
                    0.0, f"{field}: expected {shown_value(expected.get(field))}, got {shown_value(got[field])}"
                )
            else:
                scores[f"field_accuracy.{field}"] = Score(1.0)
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
