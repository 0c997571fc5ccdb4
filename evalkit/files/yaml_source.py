"""Load YAML files strictly, so that validation errors can name the line they come from.

Suite, rubric and training files are all YAML validated by pydantic. A pydantic error
knows the *path* of the bad field (``candidates.2.adapter``); this module keeps the
YAML node tree beside the data so that the path can be turned into a line number.

It is evalkit's one YAML reader (:func:`parse_yaml_text`, and :func:`load_yaml_with_nodes`
for files), and a strict one: a key repeated in a mapping at any depth is an error
naming both lines (YAML's own rule, last one wins, would silently drop a ``bars:`` list);
a file over :data:`MAX_YAML_BYTES`, or aliases expanding past :data:`MAX_YAML_NODES`
values or :data:`MAX_YAML_DEPTH` levels, is refused before any value is built. Every model
read from such a file derives from :class:`StrictModel` (unknown keys are errors).

Also in this module:

* Refuse a path that names something other than a regular file, before anything opens it.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

from evalkit.errors import ConfigError, DataError

__all__ = [
    "StrictModel", "json_objects", "refuse_non_regular_file",
]


# Refuse a path that names something other than a regular file, before anything opens it.
#
# Every option that names a file (the suite, a dataset, a train file, a rubric, a labels
# file, a JSON schema, the mock backend's ``outputs:``) may be pointed at a FIFO, a device
# or a directory. Opening a FIFO blocks until a writer appears (forever), reading
# ``/dev/zero`` never ends, and a directory fails with an error that reads like a crash.
# :func:`refuse_non_regular_file` looks at the path with ``stat`` (which opens nothing)
# and turns any of these into the caller's own error type, naming the file. A leaf module.
#
# :func:`json_objects` (at the end) is evalkit's one JSON Lines reader.

_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_non_regular_file(path: Path, what: str, error: Callable[[str], Exception] = DataError) -> None:
    """Raise ``error`` when ``path`` exists and is not a regular file (symlinks are followed).

    A missing path passes: each caller says "not found" in its own words.

    Args:
        path: the path an option names.
        what: what the file is, for the message (``"dataset file"``, ``"rubric file"``).
        error: the exception type to raise (``DataError``, ``ConfigError``...).

    Raises:
        ``error``: ``PATH: WHAT is a FIFO (named pipe), not a regular file; ...``.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise error(f"{path}: {what} cannot be inspected ({exc.strerror or exc}); "
                    "check the path and its permissions") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    raise error(f"{path}: {what} is {kind}, not a regular file; name a regular file")


# Reading JSON Lines: one function for every JSONL file evalkit reads.
ErrorOf = Callable[[str], Exception]


def json_objects(path: Path, fix: str = "each line must be one JSON object",
                 error: ErrorOf = DataError) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line of a JSONL file, streaming.

    Args:
        path: the file (UTF-8; CRLF line ends allowed).
        fix: what the reader should do about a bad line, ending the message.
        error: the error type the caller's failures are (``DataError``, ``ConfigError``...).

    Raises:
        ``error``: a line is not JSON, or not a JSON object: ``PATH:LINE: what; fix``.
        OSError, UnicodeDecodeError: the file cannot be read (callers say what to do).
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); {fix}") from None
            if not isinstance(value, dict):
                raise error(f"{path}:{number}: expected a JSON object, got {type(value).__name__}; {fix}")
            yield number, value


# Load YAML files strictly, so that validation errors can name the line they come from.

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


MAX_YAML_BYTES = 512 * 1024
"""The largest YAML file evalkit reads (512 KiB; real suites, rubrics and train configs are a few KB)."""
MAX_YAML_NODES = 100_000
"""The most values (scalars, lists, mappings) a YAML document may hold once every alias is expanded:
an alias bomb (``&a [*b, *b, ...]`` nested) is a few hundred bytes that expand to billions."""
MAX_YAML_DEPTH = 64
"""The deepest nesting of lists and mappings, aliases expanded (deeper would exhaust the recursion limit)."""


class _Refused(Exception):
    """A limit of the strict loader was passed; carries the 1-based line and the message."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# libyaml's parser when PyYAML was built with it (pure Python composes ~10x slower), else PyYAML's
# own; either way only the safe tags are built. libyaml refuses flow nesting past 1,000 levels itself.
_SafeBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeBase):  # type: ignore[misc, valid-type]
    """The safe loader; the limits are checked on the node graph it composes, before construction."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose values, aliases expanded, pass the node or depth limit, or that contains itself.

    Aliases make the node tree a graph that shares nodes; the size and depth of the tree
    they stand for are computed over the graph (each distinct collection once,
    iteratively), so an alias bomb is measured, never expanded.
    """
    if isinstance(root, yaml.ScalarNode):
        return
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            total, deepest = 1, 0
            for kid in _children(node):
                if isinstance(kid, yaml.ScalarNode):
                    total += 1
                    deepest = max(deepest, 1)
                else:
                    total += size[id(kid)]
                    deepest = max(deepest, depth[id(kid)])
            size[key], depth[key] = total, deepest + 1
            open_nodes.discard(key)
            line = int(node.start_mark.line) + 1
            if total > MAX_YAML_NODES:
                raise _Refused(line, f"holds more than {MAX_YAML_NODES:,} values (aliases expanded); "
                                     "move data into a dataset file, or use fewer aliases")
            if deepest + 1 > MAX_YAML_DEPTH:
                raise _Refused(line, f"nests deeper than {MAX_YAML_DEPTH} levels (aliases expanded); flatten it")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _Refused(int(node.start_mark.line) + 1, "an alias refers to the value that contains it; "
                                                          "remove the recursive alias")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node)
                     if not isinstance(kid, yaml.ScalarNode) and id(kid) not in size)


def _check_duplicate_keys(loader: _StrictLoader, root: yaml.Node) -> None:
    """Refuse a mapping, at any depth, that names one key twice (YAML would silently keep the last)."""
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                try:
                    key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
                    hash(key)
                except (yaml.YAMLError, TypeError):
                    key = (key_node.tag, key_node.value)
                line = int(key_node.start_mark.line) + 1
                if key in first_line:
                    raise _Refused(line, f"duplicate key '{key_node.value}' (first at line {first_line[key]}); "
                                         "remove one (YAML would silently keep only the last)")
                first_line[key] = line
        stack.extend(_children(node))


def parse_yaml_text(text: str, origin: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text strictly: the one YAML parser of evalkit (files go through :func:`load_yaml_with_nodes`).

    Strict means: a key repeated in one mapping at any depth is an error naming both
    lines; the document, aliases expanded, may not hold more than :data:`MAX_YAML_NODES`
    values nor nest deeper than :data:`MAX_YAML_DEPTH` levels, and no alias may contain
    itself; only YAML's safe tags are built.
    Every limit is checked on the composed node graph, before any Python value is built.

    Args:
        text: the YAML text.
        origin: what to name in messages (the file path, or ``--set KEY=VALUE``).

    Returns:
        The parsed data and the composed node tree (None for an empty document).

    Raises:
        ConfigError: invalid YAML or a limit passed: ``ORIGIN:LINE: what; what to do``.
    """
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)
        node = loader.get_single_node()  # type: ignore[no-untyped-call]
        if node is None:
            return None, None
        _check_expansion(node)
        _check_duplicate_keys(loader, node)
        return loader.construct_document(node), node  # type: ignore[no-untyped-call]
    except _Refused as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise ConfigError(f"{origin}{line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{origin}{line}: YAML syntax error: {problem}; fix the YAML") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ConfigError(f"{origin}: not valid YAML ({problem}); fix the YAML") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply to read; flatten it") from None
    finally:
        if loader is not None:
            loader.dispose()  # type: ignore[no-untyped-call]


def load_yaml_with_nodes(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file strictly (see :func:`parse_yaml_text`) into plain data plus its node tree.

    The path must name a regular file of at most :data:`MAX_YAML_BYTES`; both are checked
    before the file is opened.

    Args:
        path: the YAML file.

    Returns:
        The parsed data and the composed node tree (None for an empty file).

    Raises:
        ConfigError: the file is missing, not a regular file, too large, not UTF-8, not
            valid YAML, or passes a limit of the strict parser; the message names the
            file and line.
    """
    refuse_non_regular_file(path, "YAML file", ConfigError)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; check the path")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: {size:,} bytes, over the {MAX_YAML_BYTES:,}-byte limit of a YAML "
                              "config file; keep data in dataset files, not in the YAML")
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)  # the file may have grown since stat
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: over the {MAX_YAML_BYTES:,}-byte limit of a YAML config file; "
                              "keep data in dataset files, not in the YAML")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start}); "
                          "save it as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); "
                          "check the path and its permissions") from None
    return parse_yaml_text(text, str(path))


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
    elif kind == "too_long":
        limit = first.get("ctx", {}).get("max_length")
        hint = f"more than {limit:,} entries, over the limit for {field}; split the suite or drop some"
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


# The pydantic base every suite, train and rubric model uses: unknown keys are errors.
class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=False)
