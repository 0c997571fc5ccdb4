"""Fixtures for the report tests: synthetic runs and a headless Debian Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalkit.record.results import RunResult
from evalkit.report.render import render_report
from evalkit.testing.tiny_model import synthetic_run


@pytest.fixture(scope="session")
def hostile_run() -> RunResult:
    """200 items × 4 candidates with hostile predictions, inputs, ids, reasons and warnings."""
    return synthetic_run(200, hostile=True)


@pytest.fixture(scope="session")
def hostile_html(hostile_run: RunResult) -> str:
    history = [synthetic_run(40, seed=1, with_comparison=False).summary()]
    return render_report(hostile_run, history=history)


@pytest.fixture(scope="session")
def hostile_report(hostile_html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "report.html"
    path.write_text(hostile_html, encoding="utf-8")
    return path


@dataclass
class PageEvents:
    """What the page did that a test must see: console messages, page errors, dialogs."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_report(browser: Any) -> Iterator[Any]:
    """Return a function opening a report file in a fresh 1280×800 page, recording its events."""
    contexts = []

    def open_(path: Path) -> tuple[Any, PageEvents]:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        events = PageEvents()
        page.on("console", lambda m: events.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: events.errors.append(str(e)))
        page.on("request", lambda r: events.requests.append(r.url))

        def on_dialog(dialog: Any) -> None:
            events.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-failures-ready]")
        return page, events

    yield open_
    for context in contexts:
        context.close()
