"""evalkit's pytest plugin: quality bars on fine-tuned models, asserted in CI.

Registered through the ``pytest11`` entry point, so it is loaded into every pytest
session where evalkit is installed. It does nothing (and imports nothing heavy) until
a session asks for it:

* ``pytest --evalkit suites/classifier.yaml`` collects one test item per entry of the
  suite's ``bars:`` section, so CI shows a pass/fail line for each bar, and one more,
  ``no regression against the baseline``, failing when a metric regressed beyond its
  allowed drop though no bar names it: the same verdict ``evalkit run`` exits 1 on;
* the ``evalkit`` session fixture runs a suite once and returns its results, the
  ``evalkit_result`` fixture gives a test the results of the suite named by its
  ``@pytest.mark.evalkit(suite=...)`` marker, and :func:`assert_bar` checks one bar
  with a failure message that shows the value, the bar, the interval, the baseline
  and the worst failing items.

Each suite runs once per session however many bars and tests read it: a file lock
lets one pytest-xdist worker run it while the others wait and read its run directory.
A run is also reused by later sessions when nothing it depends on has changed (the
suite apart from its bars, every file the suite names, the models' and adapters'
fingerprints, the evalkit version); ``--evalkit-no-cache`` forces a fresh run.

Options: ``--evalkit SUITE`` (repeatable), ``--evalkit-store PATH``, ``--evalkit-no-cache``,
``--evalkit-report DIR``. Each can also be set in pytest's own configuration
(``pytest.ini``, ``tox.ini``, ``setup.cfg`` or ``[tool.pytest.ini_options]``) as
``evalkit_suites``, ``evalkit_store``, ``evalkit_no_cache``, ``evalkit_report``, with paths
relative to that file; or in ``[tool.evalkit]`` of the rootdir's ``pyproject.toml``
(``suites``, ``store``, ``report_dir``, ``cache``). The command line wins over pytest's
configuration, which wins over ``[tool.evalkit]``.

This module holds what pytest calls (the hooks, the collected items, the fixtures) and
:func:`assert_bar`; the settings are read in :mod:`evalkit.pytest_plugin.runs`, the suites
run and their runs reused in :mod:`evalkit.pytest_plugin.runs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from evalkit.errors import ConfigError, EvalkitError
from evalkit.pytest_plugin.runs import (
    INI_OPTIONS,
    REPORT_PROPERTY,
    REUSED_PROPERTY,
    EvalkitResult,
    EvalkitSettings,
    SuiteRuns,
    pyproject_table,
    suite_cache_key,
)

if TYPE_CHECKING:
    from evalkit.bars.evaluate import BarResult, BarSpec
    from evalkit.record.results import RunResult

__all__ = [
    "BarFailed",
    "EvalkitResult",
    "EvalkitSettings",
    "SuiteRuns",
    "assert_bar",
    "suite_cache_key",
]


class BarFailed(AssertionError):
    """A quality bar was not met; the message explains the evidence."""


class EvalkitSession:
    """The plugin's per-session state (kept in ``config.stash``), and its reporting hooks.

    Settings are read and suites run only when something asks for them.
    """

    def __init__(self, config: pytest.Config) -> None:
        """Start with no settings read and no reports seen."""
        self.config = config
        self._runs: SuiteRuns | None = None
        self.reports: dict[str, bool] = {}

    @property
    def runs(self) -> SuiteRuns:
        """The session's suite runs (reading the settings on first use)."""
        if self._runs is None:
            worker_input = getattr(self.config, "workerinput", None)
            session_id = worker_input.get("testrunuid") if isinstance(worker_input, dict) else None
            self._runs = SuiteRuns(EvalkitSettings.from_config(self.config), session_id, self.config.rootpath)
        return self._runs

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Remember report paths carried by test reports (from this process or xdist workers)."""
        properties = dict(report.user_properties)
        if REPORT_PROPERTY in properties:
            self.reports[str(properties[REPORT_PROPERTY])] = properties.get(REUSED_PROPERTY) == "true"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Name every report the session's suites wrote."""
        if not self.reports:
            return
        terminalreporter.write_sep("-", "evalkit")
        for report, reused in self.reports.items():
            note = " (run reused from an earlier session; --evalkit-no-cache runs afresh)" if reused else ""
            terminalreporter.write_line(f"evalkit report: {report}{note}")


STATE_KEY = pytest.StashKey[EvalkitSession]()


def _runs(config: pytest.Config) -> SuiteRuns:
    return config.stash[STATE_KEY].runs


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the evalkit options in their own group."""
    group = parser.getgroup("evalkit", "evalkit: quality bars on fine-tuned models")
    group.addoption(
        "--evalkit", action="append", dest="evalkit_suites", metavar="SUITE", default=[],
        help="run this suite once and collect one test per entry of its `bars:` section "
             "(repeatable; default: [tool.evalkit] suites).",
    )
    group.addoption(
        "--evalkit-store", dest="evalkit_store", metavar="PATH", default=None,
        help="the SQLite run store that runs are saved in and read back from; the plugin's run "
             "cache lives beside it (default: the evalkit_store ini option, else [tool.evalkit] store, "
             "else the suite's store:, else $EVALKIT_STORE, else evalkit.db in evalkit's data directory: "
             "$EVALKIT_HOME, else $XDG_DATA_HOME/evalkit, else ~/.local/share/evalkit).",
    )
    group.addoption(
        "--evalkit-no-cache", action="store_true", dest="evalkit_no_cache", default=False,
        help="run every suite afresh (and generate every item again) instead of reusing an earlier "
             "session's run of unchanged inputs; still once per session with xdist.",
    )
    group.addoption(
        "--evalkit-report", dest="evalkit_report", metavar="DIR", default=None,
        help="write run directories and their report.html under DIR "
             "(default: [tool.evalkit] report_dir, else each suite's output_dir).",
    )
    for name, (kind, text) in INI_OPTIONS.items():
        parser.addini(name, f"evalkit: {text}.", type=kind,
                      default=[] if kind == "paths" else (False if kind == "bool" else ""))


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; nothing else happens until a suite is asked for."""
    config.addinivalue_line(
        "markers",
        "evalkit(suite): the suite file (relative to the rootdir) whose results the "
        "evalkit_result fixture gives this test.",
    )
    state = config.stash[STATE_KEY] = EvalkitSession(config)
    config.pluginmanager.register(state, "evalkit-session")
    if config.getoption("evalkit_suites") or config.getini("evalkit_suites"):
        _ = state.runs  # read the settings now, so a bad [tool.evalkit] fails at startup


class SuiteFile(pytest.File):
    """A suite file given with ``--evalkit``: it collects one :class:`BarItem` per bar."""

    def collect(self) -> Iterator[pytest.Item]:
        """Load the suite and yield its bars; a suite that does not load is a collection error."""
        from evalkit.files.yaml_source import line_of, load_yaml_with_nodes
        from evalkit.suite.config import load_suite

        suite = load_suite(self.path)
        if not suite.bars:
            raise ConfigError(
                f"{self.path}: the suite has no `bars:` section, so --evalkit has nothing to check; "
                "add bars such as `- lora: exact_match >= 0.80` (see docs/pytest.md)"
            )
        _, node = load_yaml_with_nodes(self.path)
        for index, bar in enumerate(suite.bars):
            line = line_of(node, ["bars", index])
            item = BarItem.from_parent(self, name=bar.label, bar=bar, index=index, line=line)
            item.add_marker(pytest.mark.evalkit(suite=str(self.path)))
            yield item
        verdict = RegressionItem.from_parent(self, name=RegressionItem.NAME)
        verdict.add_marker(pytest.mark.evalkit(suite=str(self.path)))
        yield verdict

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """Show an evalkit error as its one-line message, without a traceback."""
        if isinstance(excinfo.value, EvalkitError):
            return f"evalkit: error: {excinfo.value}"
        return super().repr_failure(excinfo)


class _EvidenceItem(pytest.Item):
    """An item whose failure is evidence (a bar's, the regressions') or an evalkit error, never a traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """Show the evidence (or an evalkit error's message) instead of a traceback."""
        if isinstance(excinfo.value, BarFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, EvalkitError):
            return f"evalkit: error: {excinfo.value}"
        return super().repr_failure(excinfo)


class BarItem(_EvidenceItem):
    """One quality bar of a suite, as a test: passes when the bar is met."""

    def __init__(self, *, bar: BarSpec, index: int, line: int | None, **kwargs: Any) -> None:
        """Remember the bar and where it is written."""
        super().__init__(**kwargs)
        self.bar = bar
        self.index = index
        self.line = line

    def runtest(self) -> None:
        """Run the suite (once per session) and check this bar against it."""
        result = _runs(self.config).get(self.path)
        outcome = result.bars[self.index]
        self.user_properties += [
            ("evalkit.candidate", outcome.candidate),
            ("evalkit.bar", outcome.expression),
            ("evalkit.value", "" if outcome.value is None else f"{outcome.value:.6g}"),
            ("evalkit.status", outcome.status),
        ]
        self.user_properties += result.report_properties()
        _bar_outcome(outcome)


    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Point at the bar's line in the suite file."""
        return self.path, (self.line - 1 if self.line is not None else None), f"evalkit bar {self.bar.label}"


class RegressionItem(_EvidenceItem):
    """The run's regressions as one test: fails when a metric regressed though no bar names it.

    A bar has its own item; this one holds what :func:`evalkit.bars.verdict.run_verdict`
    blocks on besides bars (a counted metric whose drop is beyond its threshold), so
    the session fails exactly when ``evalkit run`` exits 1.
    """

    NAME = "no regression against the baseline"

    def runtest(self) -> None:
        """Run the suite (once per session) and fail on every regression the verdict counts."""
        from evalkit.bars.verdict import run_verdict
        from evalkit.record.run_sections import comparison_section

        result = _runs(self.config).get(self.path)
        self.user_properties += result.report_properties()
        gates = run_verdict(result.run).candidates
        regressions = [f"{gate.name}: {metric} {why}" for gate in gates for metric, why in gate.regressions]
        if regressions:
            raise BarFailed("regressed against the baseline beyond the allowed drop:\n  " + "\n  ".join(regressions))
        comparison = comparison_section(result.run.sections)
        if comparison is None or not comparison.candidates:
            pytest.skip("the run compared nothing with the baseline (one candidate evaluated)")


    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Point at the suite file."""
        return self.path, None, f"evalkit {self.NAME}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add one item per bar of every ``--evalkit`` suite (before -k/-m deselection runs)."""
    if (not config.getoption("evalkit_suites") and not config.getini("evalkit_suites")
            and not pyproject_table(config)[0].get("suites")):
        return
    for suite_path in _runs(config).settings.suites:
        collector = SuiteFile.from_parent(session, path=suite_path)
        report = collector.ihook.pytest_make_collect_report(collector=collector)
        collector.ihook.pytest_collectreport(report=report)
        if report.passed:
            items.extend(node for node in report.result if isinstance(node, pytest.Item))


@pytest.fixture(scope="session")
def evalkit(request: pytest.FixtureRequest) -> SuiteRuns:
    """Session-scoped: ``evalkit("suites/classifier.yaml")`` runs that suite once and returns its results.

    Paths are relative to the rootdir; every later call (from any test) returns the same
    :class:`EvalkitResult`.
    """
    return _runs(request.config)


@pytest.fixture
def evalkit_result(request: pytest.FixtureRequest, evalkit: SuiteRuns) -> EvalkitResult:
    """The results of the suite named by the test's ``@pytest.mark.evalkit(suite=...)`` marker.

    Without a marker, the one suite given with ``--evalkit``. The suite runs once per
    session, however many tests ask for it.
    """
    marker = request.node.get_closest_marker("evalkit")
    if marker is not None:
        suite = marker.kwargs.get("suite") or (marker.args[0] if marker.args else None)
        if not suite:
            raise pytest.UsageError("@pytest.mark.evalkit needs suite=PATH")
        result = evalkit(suite)
    elif len(evalkit.settings.suites) == 1:
        result = evalkit.get(evalkit.settings.suites[0])
    else:
        raise pytest.UsageError(
            f"{request.node.nodeid}: name the suite with @pytest.mark.evalkit(suite=PATH) "
            "(or pass exactly one --evalkit SUITE)"
        )
    request.node.user_properties += result.report_properties()
    return result


def assert_bar(
    result: EvalkitResult | RunResult,
    metric: str,
    op: str,
    value: float | str | None = None,
    *,
    candidate: str | None = None,
) -> BarResult:
    """Assert one quality bar on a suite's results, as a ``bars:`` entry would.

    Examples::

        assert_bar(result, "exact_match", ">=", 0.80, candidate="lora")
        assert_bar(result, "mmlu_mini", "max_drop", "3%", candidate="lora")
        assert_bar(result, "exact_match", "no significant regression", candidate="lora")

    Args:
        result: the ``evalkit_result`` fixture's value, or a RunResult.
        metric: the metric, e.g. ``judge.classifier_quality.format``.
        op: ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``, ``max_drop`` or
            ``no significant regression``.
        value: the number (or ``3%``/``2pt`` for ``max_drop``; nothing for a regression bar).
        candidate: the candidate; default the only one that is not the baseline.

    Returns:
        The bar's result when it is met.

    Raises:
        BarFailed: the bar is not met; the message shows the value, the bar, the interval,
            the baseline and the worst failing items.
        ValueError: the bar cannot be written from these arguments.
    """
    __tracebackhide__ = True
    from pydantic import ValidationError

    from evalkit.bars.evaluate import BarSpec, evaluate_bar

    if isinstance(result, EvalkitResult):
        run, comparison = result.run, result.comparison
    else:
        from evalkit.bars.evaluate import run_comparison

        run, comparison = result, run_comparison(result)
    if candidate is None:
        others = [c.name for c in run.candidates if c.name != run.baseline]
        if len(others) != 1:
            raise ValueError(f"name the candidate: assert_bar(..., candidate=one of {', '.join(others)})")
        candidate = others[0]
    if op == "max_drop":
        expression = f"{metric} max_drop {value}"
    elif op == "no significant regression":
        expression = f"no significant regression on {metric}"
    else:
        expression = f"{metric} {op} {value}"
    try:
        bar = BarSpec.of(candidate, expression)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None
    outcome = evaluate_bar(bar, run, comparison)
    if isinstance(result, EvalkitResult):
        outcome.inconclusive_policy = result.suite.inconclusive
    _bar_outcome(outcome)
    return outcome


def _bar_outcome(outcome: BarResult) -> None:
    """Turn a bar's outcome into the test's: the rule ``evalkit run`` and the report use.

    A bar that blocks (failed, or inconclusive under the suite's ``inconclusive: fail``)
    fails the test; one that does not count, or an inconclusive one the suite lets warn,
    is skipped with its explanation (never a pass); a passed bar passes.
    """
    __tracebackhide__ = True
    if outcome.blocks:
        raise BarFailed(outcome.explain())
    if not outcome.passed:
        pytest.skip(outcome.explain())
