"""Plugins: a separately installed distribution adds a check, a backend and a run stage through entry points.

The example plugin in tests/plugins/evalkit_example_plugin is installed the way a user
installs one, by pip from its pyproject.toml (setuptools builds it, offline, without an
isolated build environment), into a temporary directory that only the child processes
put on their path. evalkit then finds it through the ``evalkit.plugins`` entry point
group alone: nothing in evalkit names it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.errors import ConfigError
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import write_jsonl

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugins" / "evalkit_example_plugin"

# Expected outputs are the inputs in capitals: echo_upper gets every one right, the mock
# echoing the prompt none; item 2 has four words, one more than word_count_at_most: 3 allows.
ITEMS = [{"id": "1", "input": "one two", "output": "ONE TWO"},
         {"id": "2", "input": "one two three four", "output": "ONE TWO THREE FOUR"},
         {"id": "3", "input": "a b c", "output": "A B C"}]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the example plugin with pip into a directory of its own; return that directory."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "source"
    # pip builds in the source tree (build/, *.egg-info): a copy keeps tests/ clean.
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "evalkit_example_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


def write_suite(root: Path) -> Path:
    write_jsonl(root / "eval.jsonl", ITEMS)
    model = root / "plain-model"  # echo_upper loads no model; evalkit still resolves a local one
    model.mkdir()
    (model / "config.json").write_text("{}")
    suite = {
        "name": "plugin-suite",
        "dataset": {"path": "eval.jsonl"},
        "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [
            {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "prompt"}},
            {"name": "upper", "model": "./plain-model", "backend": "echo_upper"},
        ],
        "checks": ["exact_match", {"word_count_at_most": 3}],
        "store": "store.db",
        "output_dir": "reports",
    }
    path = root / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def evalkit(args: list[str], cwd: Path, *path: Path) -> subprocess.CompletedProcess[str]:
    """Run the evalkit CLI in a child process whose import path starts with ``path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_a_suite_runs_on_the_plugins_check_backend_and_stage(plugin_site: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    proc = evalkit(["run", str(suite), "--json", "summary.json"], tmp_path, plugin_site)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    metrics = {c["name"]: c["metrics"] for c in summary["candidates"]}
    assert metrics["upper"]["exact_match"] == 1.0  # echo_upper answered: the inputs in capitals
    assert metrics["base"]["exact_match"] == 0.0
    assert metrics["upper"]["word_count_at_most"] == pytest.approx(2 / 3)
    assert metrics["upper"]["answer_words"] == pytest.approx(3.0)  # (2 + 4 + 3) / 3, by the plugin's stage
    # The plugin's stage ran before the comparison: its metric is compared like a check's.
    compared = summary["sections"]["comparison"]["candidates"]["upper"]["metrics"]
    assert {"exact_match", "word_count_at_most", "answer_words"} <= set(compared)
    (results,) = (tmp_path / "reports" / "plugin-suite").glob("*/results.jsonl")
    reasons = {(row["candidate"], row["item_id"]): row["scores"]["word_count_at_most"]
               for row in map(json.loads, results.read_text().splitlines()) if "scores" in row}
    assert reasons[("upper", "2")]["value"] == 0.0 and "4 words, more than 3" in reasons[("upper", "2")]["reason"]


def test_without_the_plugin_its_names_are_unknown(tmp_path: Path) -> None:
    # This process has no plugin on its path: the same suite is refused, naming what is there.
    with pytest.raises(ConfigError, match="unknown (backend 'echo_upper'|check 'word_count_at_most'); available: "):
        load_suite(write_suite(tmp_path))


def test_evalkit_plugins_lists_each_entry_with_where_it_comes_from(plugin_site: Path, tmp_path: Path) -> None:
    proc = evalkit(["plugins", "--json", "-"], tmp_path, plugin_site)
    assert proc.returncode == 0, proc.stderr
    entries: list[dict[str, Any]] = json.loads(proc.stdout)
    by_name = {(e["kind"], e["name"]): e for e in entries}
    plugin = "evalkit-example-plugin 0.1.0"
    assert by_name[("check", "word_count_at_most")] == {
        "kind": "check", "name": "word_count_at_most",
        "defined_at": "evalkit_example_plugin.checks:word_count_at_most", "source": plugin}
    assert by_name[("backend", "echo_upper")]["source"] == plugin
    assert by_name[("backend", "hf")] == {"kind": "backend", "name": "hf", "defined_at": "evalkit.models.hf:HFBackend",
                                          "source": "evalkit"}
    stages = [e["name"] for e in entries if e["kind"] == "stage"]
    assert stages[-4:] == ["contamination", "answer_words", "comparison", "bars"]  # in the order they run


def test_a_plugin_that_fails_to_import_is_one_line_naming_it_and_its_distribution(
        plugin_site: Path, tmp_path: Path) -> None:
    # A broken copy of the plugin's package ahead of the installed one on the path: the
    # entry point now imports a module whose own import fails, as a half-upgraded install would.
    broken = tmp_path / "broken" / "evalkit_example_plugin"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("import evalkit_example_plugin_missing_dependency\n")
    suite = write_suite(tmp_path)
    proc = evalkit(["run", str(suite)], tmp_path, broken.parent, plugin_site)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == (
        "evalkit: error: plugin 'example' (evalkit_example_plugin) from distribution evalkit-example-plugin 0.1.0 "
        "failed to import: ModuleNotFoundError: No module named 'evalkit_example_plugin_missing_dependency'; "
        "fix or uninstall that distribution")
    assert not (tmp_path / "reports").exists() and not (tmp_path / "store.db").exists()
