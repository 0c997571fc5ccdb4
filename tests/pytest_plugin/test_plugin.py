"""The pytest plugin, through inner pytest sessions (pytester) on suites of the tiny model."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from plugin_runs import run_dirs

SuiteFactory = Callable[..., Path]
# Every test gets a private EVALKIT_HOME (conftest), so the run cache starts empty.
pytestmark = pytest.mark.usefixtures("evalkit_home")


def test_plugin_is_inert_and_light_without_evalkit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "evalkit report" not in result.stdout.str() and "- evalkit -" not in result.stdout.str()
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, evalkit.pytest_plugin.plugin; print(sorted({'torch', 'transformers', 'scipy'} "
                               "& set(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    assert imported.stdout.strip() == "[]"


def test_one_test_per_bar_with_evidence_junit_properties_and_report_path(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory
) -> None:
    suite = plugin_suite()
    result = pytester.runpytest("--evalkit", str(suite), "-rA", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines([
        "PASSED suite.yaml::lora: answered == 1.0",
        "PASSED suite.yaml::no regression against the baseline",
    ])
    # Three items with the same answers cannot rule out a drop either: Tango's interval on
    # 3 paired items is +-0.56 (a bootstrap of identical pairs collapsed to 0 and passed it).
    result.stdout.fnmatch_lines(["FAILED suite.yaml::lora: no significant regression on exact_match - INCONCLUS*"])
    # Three identical answers cannot show that `answered` did not drop 3%: undecided, and an
    # undecided gate fails under the default `inconclusive: fail`, as in `evalkit run`.
    result.stdout.fnmatch_lines(["FAILED suite.yaml::lora: answered max_drop 3% - INCONCLUSIVE: answered went*"])
    result.stdout.fnmatch_lines(["FAILED suite.yaml::lora: exact_match >= 0.80 - exact_match = 0.000, needs >=*"])
    result.stdout.fnmatch_lines(["  undecided: fails the gate (the suite's inconclusive: fail); about * paired items "
                                 "would decide it"])
    # The failure shows the value, the bar, the interval, the baseline and the worst items, not a traceback.
    result.stdout.fnmatch_lines([
        "*_ evalkit bar lora: exact_match >= 0.80 _*",
        "exact_match = 0.000, needs >= 0.800 (short by 0.800)",
        "  value:     0.000 over 3 items",
        "  bar:       exact_match >= 0.80",
        "  interval:  95% [0.000, 0.561]",
        "  baseline:  base = 0.000",
        "  vs baseline: delta +0.000, mcnemar test, *",
        "  worst failing items:",
        "    1: 0.000 — differs from the expected output — answer *",
    ])
    assert "Traceback" not in result.stdout.str()
    (report,) = [p / "report.html" for p in run_dirs(pytester.path / "reports")]
    result.stdout.fnmatch_lines(["*- evalkit -*", f"evalkit report: {report}"])
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in cases["lora: answered == 1.0"].iter("property")}
    assert properties == {"evalkit.candidate": "lora", "evalkit.bar": "answered == 1.0", "evalkit.value": "1",
                          "evalkit.status": "passed", "evalkit.report": str(report), "evalkit.reused": "false"}


def test_config_error_is_a_clear_collection_error(pytester: pytest.Pytester, plugin_suite: SuiteFactory) -> None:
    suite = plugin_suite(bars=[{"lora": "answered == 1.0"}, {"lorra": "exact_match >= 0.8"}])
    result = pytester.runpytest("--evalkit", str(suite))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting suite.yaml*",
        f"evalkit: error: {suite}:*: bars.1: no candidate named 'lorra'; choose one of base, lora",
        "*Interrupted: 1 error during collection*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_an_inconclusive_bar_is_skipped_never_passed_when_the_suite_lets_it_warn(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory
) -> None:
    suite = plugin_suite(inconclusive="warn", bars=[{"lora": "answered max_drop 3%"}])
    result = pytester.runpytest("--evalkit", str(suite), "-rA")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *INCONCLUSIVE: answered went*"])


def test_run_is_reused_by_later_sessions_until_inputs_change(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory
) -> None:
    # Defaults from [tool.evalkit]: the suite to check, the run store, where reports go.
    pytester.makepyprojecttoml('[tool.evalkit]\nsuites = ["suite.yaml"]\nstore = "db/runs.db"\nreport_dir = "out"\n')
    plugin_suite(bars=[{"lora": "answered == 1.0"}])
    first = pytester.runpytest()
    first.assert_outcomes(passed=2)
    second = pytester.runpytest()
    second.assert_outcomes(passed=2)
    (run_dir,) = run_dirs(pytester.path / "out")
    second.stdout.fnmatch_lines([f"evalkit report: {run_dir / 'report.html'} (run reused from an earlier session*"])
    assert (pytester.path / "db" / "runs.db").is_file() and any((pytester.path / "db" / "pytest-runs").glob("*.json"))
    # A changed bar is checked against the same run; a changed input runs the suite again.
    plugin_suite(bars=[{"lora": "answered == 1.0"}, {"lora": "exact_match >= 0.5"}])
    pytester.runpytest().assert_outcomes(passed=2, failed=1)
    assert len(run_dirs(pytester.path / "out")) == 1
    pytester.runpytest("--evalkit-no-cache").assert_outcomes(passed=2, failed=1)
    assert len(run_dirs(pytester.path / "out")) == 2


def test_fixture_marker_and_assert_bar(pytester: pytest.Pytester, plugin_suite: SuiteFactory) -> None:
    plugin_suite()
    pytester.makepyfile(
        """
        import pytest
        from evalkit.pytest_plugin.plugin import BarFailed, assert_bar

        @pytest.mark.evalkit(suite="suite.yaml")
        def test_answers_everything(evalkit_result):
            assert_bar(evalkit_result, "answered", "==", 1.0, candidate="lora")
            with pytest.raises(BarFailed, match="INCONCLUSIVE"):  # 3 items cannot decide a 3% drop
                assert_bar(evalkit_result, "answered", "max_drop", "3%")

        @pytest.mark.evalkit(suite="suite.yaml")
        def test_exact(evalkit_result):
            assert_bar(evalkit_result, "exact_match", ">=", 0.8, candidate="lora")

        def test_session_fixture(evalkit):
            result = evalkit("suite.yaml")
            assert [c.name for c in result.run.candidates] == ["base", "lora"]
            assert result.comparison.candidates["lora"].metrics["answered"].verdict != "regressed"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["E   *BarFailed: exact_match = 0.000, needs >= 0.800 (short by 0.800)",
                                 "E *value:     0.000 over 3 items"])
    assert "EvalkitResult(suite='tiny', run_dir=" in result.stdout.str()  # a short repr, not the whole run
    assert len(run_dirs(pytester.path / "reports")) == 1


def test_xdist_workers_run_the_suite_once(pytester: pytest.Pytester, plugin_suite: SuiteFactory) -> None:
    suite = plugin_suite()
    # --evalkit-no-cache: the second worker must get the run from the first, not from a cache.
    result = pytester.runpytest("-n", "2", "-v", "--evalkit", str(suite), "--evalkit-no-cache")
    result.assert_outcomes(passed=2, failed=3)
    output = result.stdout.str()
    assert "[gw0]" in output and "[gw1]" in output
    (run_dir,) = run_dirs(pytester.path / "reports")
    result.stdout.fnmatch_lines([f"evalkit report: {run_dir / 'report.html'}"])
