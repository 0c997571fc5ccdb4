"""Shared fixtures: a tiny random Llama on disk and small suites that use it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, build_tiny_llama, write_jsonl

REPO = Path(__file__).resolve().parents[1]

# Nothing in the tests may reach a hub; a test that tried would hang, not fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two xdist workers. Each worker, and what it starts, gets one math
    # thread: two workers whose torch pools wanted both cores waited on each other for
    # minutes. The workers also inherit the controller's COLUMNS=80, where the CLI tests
    # expect what a CI log gets (no COLUMNS: the console's piped width).
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    os.environ.pop("COLUMNS", None)


@pytest.fixture(autouse=True)
def _isolated_run_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own run store (so its own generation cache), never the user's."""
    monkeypatch.setenv("EVALKIT_STORE", str(tmp_path_factory.mktemp("store") / "evalkit.db"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random two-layer Llama with a trained BPE tokenizer and a ChatML template."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


SuiteWriter = Callable[..., Path]


@pytest.fixture
def make_suite(tmp_path: Path, tiny_model_dir: Path) -> SuiteWriter:
    """Return a function writing a small classifier suite on the tiny model.

    Keyword arguments override top-level suite keys; ``items`` replaces the eval data.
    """

    def write(items: list[dict[str, Any]] | None = None, **overrides: Any) -> Path:
        write_jsonl(tmp_path / "data" / "eval.jsonl", items if items is not None else CLASSIFIER_ITEMS)
        train = [dict(row, input=f"{row['input']} (ticket {n})") for n, row in enumerate(CLASSIFIER_ITEMS * 2)]
        write_jsonl(tmp_path / "data" / "train.jsonl", train)
        schema = REPO / "suites" / "schemas" / "classifier.json"
        (tmp_path / "suites" / "schemas").mkdir(parents=True, exist_ok=True)
        (tmp_path / "suites" / "schemas" / "classifier.json").write_text(schema.read_text())
        suite: dict[str, Any] = {
            "name": "tiny",
            "dataset": {"path": "../data/eval.jsonl", "train_path": "../data/train.jsonl"},
            "prompt": {
                "system": "You are a customer support classifier. Always output valid JSON.",
                "user": "{{ instruction }}\n\n{{ input }}",
                "expected": "{{ output }}",
            },
            "generation": {"max_new_tokens": 12, "batch_size": 2},
            "candidates": [{"name": "base", "model": str(tiny_model_dir)}],
            "checks": ["exact_match", "json_valid", {"json_schema": "schemas/classifier.json"},
                       "field_accuracy"],
            "output_dir": "../reports",
        }
        suite.update(overrides)
        path = tmp_path / "suites" / "tiny.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        return path

    return write


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# One headless Chromium for the whole session (the report's and the viewer's browser tests):
# two Playwright sync instances alive in one thread refuse to start ("Sync API inside the
# asyncio loop").
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by playwright; missing Chromium fails (never skips)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: `make test` installs it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
