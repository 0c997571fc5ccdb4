"""One run's changes to a suite: ``--set key=value`` overrides and ``--limit N``.

``--set`` takes a dotted path into the suite file (``generation.max_new_tokens=64``,
``candidates.1.adapter=adapters/v2``: numbers index lists) and a YAML value (``64``,
``true``, ``[a, b]``, ``null``). Overrides are applied to the file's mapping before
validation, so they are checked exactly like the YAML; an error names the ``--set``.

``--limit N`` evaluates the first N items per candidate and a smaller benchmark
sample (MMLU: ``ceil(N / subjects)`` questions per subject; other lm-eval tasks: the
first N documents). A limited run says so in its warnings and its ``limit`` section.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from evalkit.errors import ConfigError
from evalkit.files.yaml_source import load_yaml_with_nodes, parse_yaml_text, validation_error_message
from evalkit.record.run_facts import RunLimit
from evalkit.suite.config import SuiteConfig, load_suite


@dataclass(frozen=True)
class Override:
    """One ``--set``: the path into the suite mapping and the parsed value.

    Attributes:
        text: the option as written (for messages).
        path: keys (and list indices) from the top of the suite file.
        value: the YAML-parsed value.
    """

    text: str
    path: tuple[str | int, ...]
    value: Any


def parse_override(text: str) -> Override:
    """Parse ``key.sub=value``.

    Raises:
        ConfigError: no ``=``, an empty key part, or a value that is not YAML.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise ConfigError(f"--set {text}: write --set KEY=VALUE with a dotted key, e.g. generation.max_new_tokens=64")
    value = parse_yaml_text(raw, f"--set {text}")[0] if raw.strip() else ""
    path = tuple(int(part) if part.strip().isdigit() else part.strip() for part in parts)
    return Override(text=text, path=path, value=value)


def apply_override(data: dict[str, Any], override: Override) -> None:
    """Set ``override``'s value in the suite mapping, creating missing mappings on the way.

    Raises:
        ConfigError: the path goes through a value that is not a mapping or list, or past
            the end of a list.
    """
    node: Any = data
    for depth, part in enumerate(override.path):
        last = depth == len(override.path) - 1
        where = ".".join(str(p) for p in override.path[: depth + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise ConfigError(f"--set {override.text}: {where}: the list has {len(node)} entries "
                                  f"(indices 0-{len(node) - 1})")
            if last:
                node[part] = override.value
            else:
                node = node[part]
        elif isinstance(node, dict):
            key = str(part)
            if last:
                node[key] = override.value
            else:
                node = node.setdefault(key, {})
        else:
            parent = ".".join(str(p) for p in override.path[:depth]) or "(top level)"
            raise ConfigError(f"--set {override.text}: {parent} is a value, not a mapping or list")


def load_suite_with_overrides(path: str | Path, sets: Sequence[str] = ()) -> SuiteConfig:
    """Load a suite file with ``--set`` overrides applied before validation.

    Raises:
        ConfigError: a bad override, or a suite that does not validate with it (the
            message names the ``--set`` when the error is in an overridden value).
    """
    if not sets:
        return load_suite(path)
    overrides = [parse_override(text) for text in sets]
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        return load_suite(source)  # its own message for a missing file
    data, node = load_yaml_with_nodes(source)
    if not isinstance(data, dict):
        return load_suite(source)
    for override in overrides:
        apply_override(data, override)
    try:
        suite = SuiteConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        location = tuple(p for p in exc.errors()[0]["loc"] if isinstance(p, str | int))
        for override in reversed(overrides):
            if location[: len(override.path)] == override.path or override.path[: len(location)] == location:
                message = validation_error_message(source, None, exc).split(": ", 1)[1]
                raise ConfigError(f"--set {override.text}: {message}") from None
        raise ConfigError(validation_error_message(source, node, exc)) from None
    suite._source = source
    suite._overrides = tuple(sets)
    from evalkit.sweeps.spec import expand_sweep

    expand_sweep(suite)
    return suite


def apply_limit(suite: SuiteConfig, limit: int) -> RunLimit:
    """Cut the suite down for a quick run: ``limit`` items, a smaller benchmark sample.

    Returns:
        What was cut: the run's warning (:meth:`RunLimit.describe`) and its ``limit`` section.

    Raises:
        ConfigError: ``limit`` is below 1.
    """
    if limit < 1:
        raise ConfigError(f"--limit {limit}: give a positive number of items")
    suite.dataset.limit = min(suite.dataset.limit or limit, limit)
    per_subject: int | None = None
    documents: int | None = None
    from evalkit.benchmarks.mmlu_data import MMLU_SUBJECTS

    for spec in suite.benchmarks:
        if spec.is_mmlu:
            subjects = len(spec.subjects or MMLU_SUBJECTS)
            wanted = max(1, math.ceil(limit / subjects))
            current = spec.per_subject_limit
            spec.limit_per_subject = min(current, wanted) if current is not None else wanted
            per_subject = max(per_subject or 0, spec.limit_per_subject)
        else:
            spec.limit = min(spec.limit or limit, limit)
            documents = max(documents or 0, spec.limit)
    return RunLimit(items=limit, mmlu_per_subject=per_subject, lm_eval_documents=documents)
