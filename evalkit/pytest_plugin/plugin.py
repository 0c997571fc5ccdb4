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
:func:`assert_bar`.

Also here, above them:

* The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``
  (:class:`EvalkitSettings`).
* The pytest plugin's suite runs: each suite once per session, reused while its inputs are unchanged
  (:class:`SuiteRuns`, :func:`suite_cache_key`, :class:`EvalkitResult`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from evalkit.bars.spec import BarResult
from evalkit.errors import ConfigError, EvalkitError
from evalkit.files.home import json_digest
from evalkit.record.results import bars_section
from evalkit.record.run_facts import evalkit_version

# The pytest plugin's suite runs: each suite once per session, reused while its inputs are unchanged.
#
# :class:`SuiteRuns` runs a suite at most once per session however many bars and tests read
# it: a file lock lets one pytest-xdist worker run it while the others wait and read its
# run directory. A run is also reused by later sessions when :func:`suite_cache_key` is
# unchanged (the suite apart from its bars, every file the suite names, the models' and
# adapters' fingerprints, the evalkit version); ``--evalkit-no-cache`` forces a fresh run.
# A test sees a run as an :class:`EvalkitResult`.
#
# Also in this module:
#
# * The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``.

# The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``.
#
# The options are ``--evalkit SUITE`` (repeatable), ``--evalkit-store PATH``,
# ``--evalkit-no-cache`` and ``--evalkit-report DIR`` (added by :func:`pytest_addoption`);
# pytest's configuration may set them as the ini options of :data:`INI_OPTIONS`, with paths
# relative to the ini file; ``[tool.evalkit]`` of the rootdir's ``pyproject.toml`` as
# :data:`PYPROJECT_KEYS`, with paths relative to that file.

PYPROJECT_KEYS = {"suites", "store", "report_dir", "cache"}
"""The keys of ``[tool.evalkit]`` this plugin reads."""


@dataclass(frozen=True)
class EvalkitSettings:
    """The plugin's settings: command line over pytest's ini options over ``[tool.evalkit]`` over defaults.

    Attributes:
        suites: suite files whose bars become test items.
        store: the run store, or None for the suite's ``store:`` (else the default store).
        report_dir: root of run directories, or None for each suite's ``output_dir``.
        cache: reuse runs of earlier sessions when their inputs are unchanged.
    """

    suites: tuple[Path, ...] = ()
    store: Path | None = None
    report_dir: Path | None = None
    cache: bool = True

    @classmethod
    def from_config(cls, config: pytest.Config) -> EvalkitSettings:
        """Read the options, then pytest's ini options, then ``[tool.evalkit]`` in the rootdir's pyproject.toml.

        Raises:
            pytest.UsageError: ``[tool.evalkit]`` holds a value of the wrong type.
        """
        table, pyproject = pyproject_table(config)
        base = pyproject.parent if pyproject is not None else config.rootpath
        where = f"{pyproject}: [tool.evalkit]"
        for key in sorted(set(table) - PYPROJECT_KEYS):
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"{where}: unknown key '{key}' (known: {', '.join(sorted(PYPROJECT_KEYS))})"
                ),
                stacklevel=2,
            )
        cli_suites = config.getoption("evalkit_suites") or []
        suites = (
            [Path(s) for s in cli_suites]
            or _ini_suites(config)
            or [base / s for s in _strings(table, "suites", where)]
        )
        store = (config.getoption("evalkit_store") or _ini_path(config, "evalkit_store")
                 or _path(table, "store", base, where))
        report_dir = (config.getoption("evalkit_report") or _ini_path(config, "evalkit_report")
                      or _path(table, "report_dir", base, where))
        cache = table.get("cache", True)
        if not isinstance(cache, bool):
            raise pytest.UsageError(f"{where}: cache must be true or false, not {cache!r}")
        no_cache = config.getoption("evalkit_no_cache") or config.getini("evalkit_no_cache")
        return cls(
            suites=tuple(dict.fromkeys(p.expanduser().resolve() for p in suites)),
            store=Path(store).expanduser().resolve() if store else None,
            report_dir=Path(report_dir).expanduser().resolve() if report_dir else None,
            cache=cache and not no_cache,
        )


INI_OPTIONS: dict[str, tuple[Literal["paths", "string", "bool"], str]] = {
    "evalkit_suites": ("paths", "suite files whose bars become tests, one a line (like --evalkit)"),
    "evalkit_store": ("string", "the run store (like --evalkit-store), relative to this file"),
    "evalkit_no_cache": ("bool", "run every suite afresh (like --evalkit-no-cache)"),
    "evalkit_report": ("string", "where run directories go (like --evalkit-report), relative to this file"),
}
"""pytest ini options (``pytest.ini``, ``[tool.pytest.ini_options]``, ...): name -> (type, help)."""


def _ini_suites(config: pytest.Config) -> list[Path]:
    """The ``evalkit_suites`` ini option's paths (pytest reads them relative to the ini file)."""
    return [Path(p) for p in config.getini("evalkit_suites")]


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    """A path-valued ini option, relative to the ini file it is written in (None when unset)."""
    value = str(config.getini(name) or "").strip()
    if not value:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / Path(value).expanduser()


def pyproject_table(config: pytest.Config) -> tuple[dict[str, Any], Path | None]:
    """Return ``[tool.evalkit]`` of the rootdir's pyproject.toml (empty when absent) and that file's path."""
    pyproject = config.rootpath / "pyproject.toml"
    if not pyproject.is_file():
        return {}, None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return {}, pyproject  # pytest itself reports a broken pyproject.toml
    table = data.get("tool", {}).get("evalkit", {})
    return (table if isinstance(table, dict) else {}), pyproject


def _strings(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise pytest.UsageError(f"{where}: {key} must be a list of paths, not {value!r}")
    return value


def _path(table: Mapping[str, Any], key: str, base: Path, where: str) -> Path | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise pytest.UsageError(f"{where}: {key} must be a path, not {value!r}")
    return base / value


# The pytest plugin's suite runs: each suite once per session, reused while its inputs are unchanged.

if TYPE_CHECKING:
    from evalkit.comparison.compare import Comparison
    from evalkit.record.results import RunResult
    from evalkit.stages import SuiteInputs
    from evalkit.suite.config import SuiteConfig

REPORT_PROPERTY = "evalkit.report"
"""The junit property (and test-report user property) that carries a run's report path."""
_STORED_RUNS_CONSIDERED = 5
"""How many of a suite's newest stored runs the plugin looks through for an identical one."""
REUSED_PROPERTY = "evalkit.reused"
"""``true`` when the run was made by an earlier session (``false``: made by this one)."""


@dataclass(repr=False)
class EvalkitResult:
    """A suite's run as a test sees it.

    Attributes:
        suite: the suite.
        bars: the suite's bars, checked against the run.
        run_dir: the run directory (with ``report.html``).
        cached: True when the run was read back from disk (made by an earlier session or
            by another xdist worker of this one).
        reused: True when an earlier session made the run.
        store: the run store the run was saved in.
    """

    suite: SuiteConfig
    bars: list[BarResult]
    run_dir: Path | None
    cached: bool
    reused: bool = False
    store: Path | None = None
    _run: RunResult | None = None
    _comparison: Comparison | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # Short: pytest prints fixture values beside a failing test.
        return f"EvalkitResult(suite={self.suite.name!r}, run_dir={str(self.run_dir)!r}, bars={len(self.bars)})"

    @property
    def run(self) -> RunResult:
        """The run's result, read back from the run store when another process made it."""
        if self._run is None:
            from evalkit.store import RunStore, resolve_store_path

            assert self.run_dir is not None
            with RunStore(resolve_store_path(self.suite, self.store)) as store:
                self._run = store.find_run(str(self.run_dir))
        return self._run

    @property
    def comparison(self) -> Comparison:
        """The run's comparison of every candidate with the baseline."""
        if self._comparison is None:
            from evalkit.bars.evaluate import run_comparison

            self._comparison = run_comparison(self.run, self.suite)
        return self._comparison

    @property
    def report(self) -> Path | None:
        """The run's HTML report."""
        return self.run_dir / "report.html" if self.run_dir is not None else None

    def report_properties(self) -> list[tuple[str, object]]:
        """Return the test-report properties naming the report (shown in the terminal summary)."""
        if self.report is None:
            return []
        return [(REPORT_PROPERTY, str(self.report)), (REUSED_PROPERTY, "true" if self.reused else "false")]


def suite_cache_key(planned: SuiteInputs) -> str:
    """Return a key that changes when anything a run of the planned suite depends on changes.

    The key covers the suite file apart from its ``bars:`` (bars are checked again on a
    reused run), the content of every file the suite names (data, schemas, rubrics,
    training configs), every candidate's model, adapter and prompt fingerprints (from
    the plans the run will be handed, so nothing is planned twice), and the evalkit version.

    Args:
        planned: the suite's :func:`evalkit.runner.plan_suite`.
    """
    from evalkit.files.yaml_source import load_yaml_with_nodes
    from evalkit.record.run_dir import named_file_hashes
    from evalkit.runner import candidate_identity

    suite = planned.suite
    data, _ = load_yaml_with_nodes(suite.source)
    data.pop("bars", None)
    files = named_file_hashes(data, suite.resolve)
    identities = {
        name: (vars(identity) if (identity := candidate_identity(plan)) else plan.skip_reason)
        for name, plan in planned.plans.items()
    }
    payload = {"suite": data, "files": files, "candidates": identities, "evalkit": evalkit_version()}
    return json_digest(payload)


class SuiteRuns:
    """Runs each suite once per session (and once across xdist workers), reusing earlier runs.

    The first process to take a suite's file lock runs it and writes an entry naming
    its run directory; the others wait on the lock and read that run directory.
    """

    def __init__(self, settings: EvalkitSettings, session_id: str | None, rootpath: Path) -> None:
        """Remember the settings.

        Args:
            settings: the plugin's settings.
            session_id: shared by all xdist workers of one session (None without xdist).
            rootpath: the rootdir, which relative suite paths are read against.
        """
        self.settings = settings
        self.session_id = session_id
        self.rootpath = rootpath
        self._results: dict[Path, EvalkitResult] = {}
        self._errors: dict[Path, Exception] = {}

    def __call__(self, suite: str | Path) -> EvalkitResult:
        """Return the results of ``suite`` (a path, relative to the rootdir), running it once."""
        path = Path(suite).expanduser()
        return self.get(path if path.is_absolute() else self.rootpath / path)

    def get(self, suite_path: Path) -> EvalkitResult:
        """Return the suite's results, running it if no usable run exists.

        Raises:
            EvalkitError: the suite does not load or does not run; raised again for every
                later request in the session without running it a second time.
        """
        suite_path = suite_path.resolve()
        if suite_path in self._errors:
            raise self._errors[suite_path]
        if suite_path not in self._results:
            try:
                self._results[suite_path] = self._obtain(suite_path)
            except Exception as exc:
                self._errors[suite_path] = exc
                raise
        return self._results[suite_path]

    def cache_dir(self, suite: SuiteConfig) -> Path:
        """Where the suite's run entries and locks live: ``pytest-runs/`` beside its run store."""
        from evalkit.store import resolve_store_path

        directory = resolve_store_path(suite, self.settings.store).parent / "pytest-runs"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _obtain(self, suite_path: Path) -> EvalkitResult:
        from filelock import FileLock

        from evalkit.files.home import write_text
        from evalkit.runner import plan_suite
        from evalkit.suite.config import load_suite

        suite = load_suite(suite_path)
        # Planned once (stale adapters trained first): the key and the run share the plans.
        planned = plan_suite(suite)
        key = suite_cache_key(planned)
        entry_path = self.cache_dir(suite) / f"{suite.name}-{key[:24]}.json"
        with FileLock(str(entry_path.with_suffix(".lock"))):
            reused = self._reuse(suite, entry_path)
            if reused is None and self.settings.cache:
                reused = self._reuse_stored(planned)
            if reused is not None and reused.run_dir is not None and not entry_path.is_file():
                entry = {"run_dir": str(reused.run_dir), "session": None, "suite": str(suite_path)}
                write_text(entry_path, json.dumps(entry))
            if reused is not None:
                return reused
            result = self._run(planned)
            entry = {"run_dir": str(result.run_dir), "session": self.session_id, "suite": str(suite_path)}
            write_text(entry_path, json.dumps(entry))
            return result

    def _reuse(self, suite: SuiteConfig, entry_path: Path) -> EvalkitResult | None:
        """Return the run an entry names, when this session may use it and it is intact."""
        if not entry_path.is_file():
            return None
        try:
            entry = json.loads(entry_path.read_text(encoding="utf-8"))
            run_dir = Path(entry["run_dir"])
        except (ValueError, KeyError, TypeError):
            return None
        same_session = self.session_id is not None and entry.get("session") == self.session_id
        if not (self.settings.cache or same_session) or not (run_dir / "summary.json").is_file():
            return None
        result = self._from_run_dir(suite, run_dir)
        result.reused = not same_session
        return result

    def _reuse_stored(self, planned: SuiteInputs) -> EvalkitResult | None:
        """Return an identical run already in the store (one ``evalkit run`` made), if its directory is intact.

        Identical is :func:`evalkit.record.run_dir.same_as_stored`: the whole suite, the
        same resolved config apart from its bars, files, device, dtype, library versions
        and candidate identities; the newest such run of the last few is taken.
        """
        from evalkit.record.run_dir import same_as_stored
        from evalkit.store import RunStore, resolve_store_path

        suite = planned.suite
        path = resolve_store_path(suite, self.settings.store)
        if not path.is_file():
            return None
        with RunStore(path, read_only=True) as store:
            for summary in reversed(store.run_summaries(suite.name, limit=_STORED_RUNS_CONSIDERED)):
                if same_as_stored(summary, planned):
                    run = store.find_run(summary["run_id"])
                    if run.run_dir is not None and (Path(run.run_dir) / "summary.json").is_file():
                        result = self._from_run_dir(suite, Path(run.run_dir))
                        result.reused = True
                        result._run = run
                        return result
        return None

    def _from_run_dir(self, suite: SuiteConfig, run_dir: Path) -> EvalkitResult:
        from evalkit.bars.evaluate import evaluate_bars

        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        stored = bars_section(summary.get("sections", {}), str(run_dir / "summary.json"))
        result = EvalkitResult(suite=suite, bars=[], run_dir=run_dir, cached=True, store=self.settings.store)
        if [(b.candidate, b.expression) for b in stored] == [(b.candidate, b.expression) for b in suite.bars]:
            result.bars = stored
        else:
            # The bars changed since that run: check the new ones against it.
            result.bars = evaluate_bars(suite.bars, result.run, suite=suite)
        return result

    def _run(self, planned: SuiteInputs) -> EvalkitResult:
        from evalkit.api import run_suite

        suite = planned.suite
        run = run_suite(suite, output_dir=self.settings.report_dir, command="pytest (evalkit plugin)",
                        store=self.settings.store, cache=self.settings.cache, planned=planned)
        # The bars the run's own bars stage checked: one verdict for the CLI, the report and pytest.
        bars = bars_section(run.sections)
        return EvalkitResult(suite=suite, bars=bars, run_dir=run.run_dir, cached=False,
                             store=self.settings.store, _run=run)


if TYPE_CHECKING:
    from evalkit.bars.evaluate import BarResult, BarSpec
    from evalkit.record.results import RunResult


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
        from evalkit.record.results import comparison_section

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
