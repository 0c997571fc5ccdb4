"""--set overrides are validated like the YAML and name the key; --limit cuts items and benchmark samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.suite.config import apply_limit, load_suite_with_overrides, parse_override


def test_values_are_yaml() -> None:
    assert parse_override("generation.max_new_tokens=64").value == 64
    assert parse_override("candidates.0.name=x").path == ("candidates", 0, "name")
    assert parse_override("a.b=[1, 2]").value == [1, 2]


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1"])
def test_malformed_set_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_override(text)


def test_override_applies_before_validation(make_suite) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite_with_overrides(make_suite(), ["generation.max_new_tokens=7"])
    assert suite.generation.max_new_tokens == 7


@pytest.mark.parametrize(("text", "message"), [
    ("generation.max_new_tokens=lots", "--set generation.max_new_tokens=lots: generation.max_new_tokens"),
    ("generation.no_such_key=1", "--set generation.no_such_key=1: generation.no_such_key: unknown key"),
    ("candidates.9.name=x", "--set candidates.9.name=x: candidates.9: the list has"),
])
def test_bad_override_names_its_key_and_exits_2(
    make_suite, text: str, message: str, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    assert main(["run", str(make_suite()), "--set", text]) == 2
    assert message in capsys.readouterr().err


def test_limit_cuts_items_and_mmlu_per_subject(make_suite) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite_with_overrides(make_suite(benchmarks=[{"task": "mmlu_mini"}]))
    limit = apply_limit(suite, 60)
    assert suite.dataset.limit == 60
    assert suite.benchmarks[0].limit_per_subject == 2
    assert limit.mmlu_per_subject == 2 and "--limit 60" in limit.describe()


def test_limit_below_one_is_refused(make_suite) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="--limit 0"):
        apply_limit(load_suite_with_overrides(make_suite()), 0)


def test_path_is_kept_for_relative_paths(make_suite) -> None:  # type: ignore[no-untyped-def]
    path: Path = make_suite()
    suite = load_suite_with_overrides(path, ["generation.max_new_tokens=3"])
    assert suite.resolve("x") == path.parent.resolve() / "x"
