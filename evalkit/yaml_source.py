"""Load YAML files so that validation errors can name the line they come from.

Suite, rubric and training files are all YAML validated by pydantic. A pydantic error
knows the *path* of the bad field (``candidates.2.adapter``); this module keeps the
YAML node tree beside the data so that the path can be turned into a line number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from evalkit.errors import ConfigError

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def load_yaml_with_nodes(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file into plain data plus its node tree.

    Args:
        path: the YAML file.

    Returns:
        The parsed data and the composed node tree (None for an empty file).

    Raises:
        ConfigError: the file is missing or is not valid YAML; the message names the
            file and line.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start}); "
                          "save it as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); "
                          "check the path and its permissions") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{path}{line}: YAML syntax error: {problem}; fix the YAML") from exc
    return data, node


def line_of(node: yaml.Node | None, location: Sequence[str | int]) -> int | None:
    """Return the 1-based line of the deepest node on ``location`` that exists.

    Args:
        node: the root node from :func:`load_yaml_with_nodes`.
        location: a pydantic error location (keys and list indexes).

    Returns:
        The line number, or None when the file was empty.
    """
    if node is None:
        return None
    current = node
    for part in location:
        nxt: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == str(part):
                    nxt = value_node
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(current.value):
                nxt = current.value[part]
        if nxt is None:
            break
        current = nxt
    return int(current.start_mark.line) + 1


def validation_error_message(
    path: Path, node: yaml.Node | None, error: pydantic.ValidationError
) -> str:
    """Turn the first pydantic error into one line naming file, line, field and a fix."""
    first = error.errors()[0]
    location = [p for p in first["loc"] if isinstance(p, str | int)]
    field = ".".join(str(p) for p in location) or "(top level)"
    line = line_of(node, location)
    where = f"{path}:{line}" if line is not None else str(path)
    kind = first["type"]
    if kind == "extra_forbidden":
        hint = f"unknown key '{location[-1]}'; remove it or check its spelling"
    elif kind == "missing":
        hint = "required field is missing; add it"
    else:
        # A validator's ValueError reaches us as "Value error, <message>": the message is enough.
        hint = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {field}: {hint}"


def load_model_from_yaml(path: Path, model: type[ModelT]) -> ModelT:
    """Load a YAML file and validate it as ``model``.

    Raises:
        ConfigError: on a syntax or validation error, naming file, line and field.
    """
    data, node = load_yaml_with_nodes(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; see the README for the format")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(validation_error_message(path, node, exc)) from None
