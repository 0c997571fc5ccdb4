"""The strict YAML loader: what it refuses (with lines) and the valid YAML it still reads as before.

The hostile cases run end to end in tests/test_hostile_suites.py; these check the loader
itself, in-process: the lines it names, and that anchors, aliases and merge keys that
stay within the limits read exactly as PyYAML's safe loader reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from evalkit.errors import ConfigError
from evalkit.files.yaml_source import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    load_yaml_with_nodes,
    parse_yaml_text,
    refuse_non_regular_file,
)

VALID = """\
defaults: &defaults {backend: mock, options: {echo: expected}}
candidates:
  - <<: *defaults
    name: base
  - <<: *defaults
    name: lora
    options: {echo: prompt}
shared: &list [1, 2, 3]
again: *list
flags: {yes_key: true, 'true': 1, 1: one}
"""


def test_valid_yaml_reads_exactly_as_the_safe_loader_reads_it() -> None:
    data, node = parse_yaml_text(VALID, "x.yaml")
    assert data == yaml.safe_load(VALID)
    assert data["candidates"][1]["options"] == {"echo": "prompt"}  # an explicit key beside a merge is no duplicate
    assert isinstance(node, yaml.MappingNode)
    assert parse_yaml_text("", "x.yaml") == (None, None)


@pytest.mark.parametrize(("text", "line", "first", "key"), [
    ("a: 1\nb: 2\na: 3\n", 3, 1, "a"),
    ("top:\n  - x: 1\n    y: 2\n    x: 3\n", 4, 2, "x"),
    ("m: {k: 1, k: 2}\n", 1, 1, "k"),
    ("m:\n  1: a\n  0x1: b\n", 3, 2, "0x1"),  # the same key once read (the integer 1)
])
def test_a_duplicate_key_names_both_lines(text: str, line: int, first: int, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^x\.yaml:{line}: duplicate key '{key}' \(first at line {first}\); remove"):
        parse_yaml_text(text, "x.yaml")


def test_limits_are_measured_on_the_node_graph() -> None:
    width = 10
    levels = len(str(MAX_YAML_NODES))  # width ** levels > MAX_YAML_NODES
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    with pytest.raises(ConfigError, match=rf"x\.yaml:\d+: holds more than {MAX_YAML_NODES:,} values"):
        parse_yaml_text("\n".join(lines), "x.yaml")
    assert parse_yaml_text("\n".join(lines[:3]), "x.yaml")[0]["l2"][0][0] == ["x"] * width  # 1,000: fine
    deep = "a: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    with pytest.raises(ConfigError, match=r"nests deeper than"):
        parse_yaml_text(deep, "x.yaml")
    assert parse_yaml_text("a: " + "[" * (MAX_YAML_DEPTH - 2) + "]" * (MAX_YAML_DEPTH - 2), "x.yaml")[0]
    with pytest.raises(ConfigError, match=r"x\.yaml:1: an alias refers to the value that contains it"):
        parse_yaml_text("a: &a [1, *a]", "x.yaml")


def test_unsafe_tags_and_bad_characters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml:1: YAML syntax error"):
        parse_yaml_text("a: !!python/object/apply:os.system [echo]", "x.yaml")
    with pytest.raises(ConfigError, match=r"x\.yaml: not valid YAML \(unacceptable character"):
        parse_yaml_text("a: \x00", "x.yaml")


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("a: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert load_yaml_with_nodes(link)[0] == {"a": 1}  # a symlink to a regular file is a regular file
    os.mkfifo(tmp_path / "pipe.yaml")
    with pytest.raises(ConfigError, match=r"pipe\.yaml: YAML file is a FIFO \(named pipe\), not a regular file"):
        load_yaml_with_nodes(tmp_path / "pipe.yaml")
    with pytest.raises(ConfigError, match=r"is a directory, not a regular file"):
        load_yaml_with_nodes(tmp_path)
    refuse_non_regular_file(tmp_path / "missing.yaml", "x")  # missing: each caller says "not found" itself
