"""The pytest plugin's suite runs: each suite once per session, reused while its inputs are unchanged.

:class:`SuiteRuns` runs a suite at most once per session however many bars and tests read
it: a file lock lets one pytest-xdist worker run it while the others wait and read its
run directory. A run is also reused by later sessions when :func:`suite_cache_key` is
unchanged (the suite apart from its bars, every file the suite names, the models' and
adapters' fingerprints, the evalkit version); ``--evalkit-no-cache`` forces a fresh run.
A test sees a run as an :class:`EvalkitResult`.

Also in this module:

* The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from evalkit.bars.result import BarResult
from evalkit.files.home import json_digest
from evalkit.record.environment import evalkit_version
from evalkit.record.run_sections import bars_section

# The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``.
#
# The options are ``--evalkit SUITE`` (repeatable), ``--evalkit-store PATH``,
# ``--evalkit-no-cache`` and ``--evalkit-report DIR`` (added by :mod:`evalkit.pytest_plugin.plugin`);
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
    from evalkit.record.resolved_suite import named_file_hashes
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

        from evalkit.files.safe_write import write_text
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

        Identical is :func:`evalkit.record.resolved_suite.same_as_stored`: the whole suite, the
        same resolved config apart from its bars, files, device, dtype, library versions
        and candidate identities; the newest such run of the last few is taken.
        """
        from evalkit.record.resolved_suite import same_as_stored
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
