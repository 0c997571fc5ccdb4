"""The pytest plugin reuses the identical run `evalkit run` stored, instead of storing another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from plugin_runs import run_dirs

from evalkit.cli import main
from evalkit.store import RunStore

SuiteFactory = Callable[..., Path]
pytestmark = pytest.mark.usefixtures("evalkit_home")


def _stored_runs(store: Path) -> int:
    with RunStore(store, read_only=True) as runs:
        return runs.count_runs()


def test_the_plugin_reuses_an_identical_cli_run_and_not_a_limited_one(
    pytester: pytest.Pytester, plugin_suite: SuiteFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyprojecttoml('[tool.evalkit]\nsuites = ["suite.yaml"]\nstore = "db/runs.db"\nreport_dir = "reports"\n')
    suite = plugin_suite(bars=[{"lora": "answered == 1.0"}])
    store = pytester.path / "db" / "runs.db"
    monkeypatch.chdir(pytester.path)
    # A quick CLI run first: --limit makes it another run than the whole suite, never reused.
    assert main(["run", str(suite), "--store", str(store), "--limit", "2"]) in (0, 1)
    assert main(["run", str(suite), "--store", str(store)]) == 0
    (cli_dir,) = [d for d in run_dirs(pytester.path / "reports") if "--limit" not in (d / "summary.json").read_text()]
    assert _stored_runs(store) == 2

    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"evalkit report: {cli_dir / 'report.html'} (run reused from an earlier session*"])
    assert _stored_runs(store) == 2  # history shows the two runs made, not a third
    assert len(run_dirs(pytester.path / "reports")) == 2

    # Once the suite changes (another token budget), the stored run is not it: the plugin runs.
    plugin_suite(bars=[{"lora": "answered == 1.0"}], generation={"max_new_tokens": 3, "batch_size": 4})
    pytester.runpytest().assert_outcomes(passed=2)
    assert _stored_runs(store) == 3
