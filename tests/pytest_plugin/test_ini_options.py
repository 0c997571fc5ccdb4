"""The plugin's options read from pytest's own configuration (pytest.ini, [tool.pytest.ini_options])."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from plugin_runs import run_dirs

SuiteFactory = Callable[..., Path]
# Every test gets a private EVALKIT_HOME (conftest), so the run cache starts empty.
pytestmark = pytest.mark.usefixtures("evalkit_home")


def test_pytest_ini_sets_every_option_relative_to_itself_and_the_command_line_wins(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_suite(bars=[{"lora": "answered == 1.0"}])
    pytester.makeini("[pytest]\nevalkit_suites = suite.yaml\nevalkit_store = db/runs.db\nevalkit_report = out\n")
    # Run from a subdirectory: the ini's paths are read against the ini file, not the cwd.
    elsewhere = pytester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    pytester.runpytest().assert_outcomes(passed=2)
    assert len(run_dirs(pytester.path / "out")) == 1
    assert (pytester.path / "db" / "runs.db").is_file()
    assert not (elsewhere / "out").exists() and not (elsewhere / "db").exists()
    # The same inputs again: the run is reused (one run directory still).
    pytester.runpytest().assert_outcomes(passed=2)
    assert len(run_dirs(pytester.path / "out")) == 1
    # The command line wins over the ini: another store and report directory.
    cli_out = pytester.path / "cli-out"
    pytester.runpytest("--evalkit-store", str(pytester.path / "cli.db"), "--evalkit-report", str(cli_out)
                       ).assert_outcomes(passed=2)
    assert len(run_dirs(cli_out)) == 1 and len(run_dirs(pytester.path / "out")) == 1
    assert (pytester.path / "cli.db").is_file()


def test_tool_pytest_ini_options_win_over_tool_evalkit_and_no_cache_runs_afresh(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory
) -> None:
    plugin_suite(bars=[{"lora": "answered == 1.0"}, {"lora": "exact_match >= 0.5"}])
    pytester.makepyprojecttoml(
        '[tool.evalkit]\nsuites = ["missing.yaml"]\nreport_dir = "tool-out"\n\n'
        '[tool.pytest.ini_options]\nevalkit_suites = ["suite.yaml"]\nevalkit_report = "ini-out"\n'
        'evalkit_no_cache = true\n'
    )
    pytester.runpytest().assert_outcomes(passed=2, failed=1)
    pytester.runpytest().assert_outcomes(passed=2, failed=1)
    # evalkit_no_cache: the second session ran the suite again instead of reusing the first run.
    assert len(run_dirs(pytester.path / "ini-out")) == 2
    assert not (pytester.path / "tool-out").exists()
    # The command line's suite replaces the ini's list.
    other = plugin_suite(bars=[{"lora": "answered == 1.0"}])
    pytester.runpytest("--evalkit", str(other)).assert_outcomes(passed=2)


def test_a_wrongly_typed_ini_option_is_a_usage_error_and_nothing_runs(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory
) -> None:
    plugin_suite(bars=[{"lora": "answered == 1.0"}])
    pytester.makeini("[pytest]\nevalkit_suites = suite.yaml\nevalkit_no_cache = maybe\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # pytest checks a bool ini option itself, at startup.
    result.stderr.fnmatch_lines(["ERROR: invalid truth value 'maybe'"])
    assert not (pytester.path / "reports").exists()
