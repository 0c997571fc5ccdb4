"""The demo suite's bars in the report, read in headless Chromium as a reviewer opens the file.

The run is not the demo's (a real run of suites/classifier.yaml takes many minutes): it
is a synthetic classifier run carrying the demo suite's exact bars, read from the suite
file, checked by evalkit (:mod:`bar_runs`), so this test follows the suite's bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bar_runs import DEMO_SUITE, run_with_bars, suite_bars
from report_files import ARTIFACTS

from evalkit.bars.view import STATUS_LABELS
from evalkit.record.results import bars_section
from evalkit.report.render import render_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_bars_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, str]]]:
    """The report of a run with the demo suite's bars, and (candidate, bar, status) of each bar it checked."""
    run = run_with_bars(suite_bars())
    path = tmp_path_factory.mktemp("demo-bars") / "report.html"
    path.write_text(render_report(run), encoding="utf-8")
    return path, [(r.candidate, r.expression, r.status) for r in bars_section(run.sections)]


def test_the_report_lists_every_bar_of_the_demo_suite(demo_bars_report: tuple[Path, list[tuple[str, str, str]]],
                                                     open_report: Any) -> None:
    path, checked = demo_bars_report
    demo = [(bar.candidate, bar.expression) for bar in suite_bars(DEMO_SUITE)]
    assert demo and [(candidate, expression) for candidate, expression, _ in checked] == demo
    page, events = open_report(path)
    rows = page.locator("#bars tr.bar").evaluate_all(
        "rows => rows.map(r => [r.querySelector('td.candidate').innerText, r.querySelector('td.expression').innerText,"
        " r.dataset.status, r.querySelector('td.status').innerText, getComputedStyle(r.querySelector('td.status')).color])")
    assert [(candidate, expression, status) for candidate, expression, status, _, _ in rows] == checked
    for _, _, status, label, _ in rows:
        assert label.startswith(STATUS_LABELS[status])
    # Styled by status: a passed bar's status is green, a failed one's red (the report's --green, --red).
    colours = {status: colour for _, _, status, _, colour in rows}
    assert colours.get("passed") in (None, "rgb(46, 125, 50)") and colours.get("failed") in (None, "rgb(198, 40, 40)")
    assert page.locator("nav a[href='#bars']").inner_text() == "Bars"
    assert events.errors == [] and [m for m in events.console if m[0] in ("error", "warning")] == []


def test_a_long_bars_table_leaves_the_verdict_on_the_first_screen(open_report: Any,
                                                                   tmp_path: Path) -> None:
    bars = suite_bars() * 8  # 48 rows
    path = tmp_path / "report.html"
    path.write_text(render_report(run_with_bars(bars)), encoding="utf-8")
    page, _ = open_report(path)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-bars-first-screen.png"))
    assert page.locator("#bars tr.bar").count() == len(bars)
    headline = page.locator("#verdict .headline").bounding_box()
    verdict = page.locator("#verdict").bounding_box()
    table = page.locator("#bars").bounding_box()
    assert headline is not None and headline["y"] + headline["height"] < 300
    assert verdict is not None and table is not None and table["y"] >= verdict["y"] + verdict["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
