"""The pytest plugin's settings: command line over pytest's ini options over ``[tool.evalkit]``.

The options are ``--evalkit SUITE`` (repeatable), ``--evalkit-store PATH``,
``--evalkit-no-cache`` and ``--evalkit-report DIR`` (added by :mod:`evalkit.pytest_plugin.plugin`);
pytest's configuration may set them as the ini options of :data:`INI_OPTIONS`, with paths
relative to the ini file; ``[tool.evalkit]`` of the rootdir's ``pyproject.toml`` as
:data:`PYPROJECT_KEYS`, with paths relative to that file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

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
