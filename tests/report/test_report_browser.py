"""The report in headless Chromium (Debian's package), as a reviewer opens it from disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from report_files import ARTIFACTS

from evalkit.report.render import render_report
from evalkit.testing.tiny_model import HOSTILE_OUTPUTS, synthetic_run

pytestmark = pytest.mark.browser


def card_texts(page: Any, selector: str) -> list[str]:
    return page.locator(f"#f-list article.case {selector}").all_inner_texts()


def search(page: Any, text: str) -> None:
    page.fill("#f-search", text)
    page.wait_for_function("t => document.getElementById('f-count').textContent.includes(t) || true", arg=text)
    page.wait_for_timeout(300)  # the search box waits 150 ms for typing to pause


def test_hostile_report_runs_no_code_from_the_data(hostile_report: Path, open_report: Any) -> None:
    page, events = open_report(hostile_report)
    # Show every hostile text: it sits in the first items of each non-baseline candidate.
    for needle in ("__pwned", "javascript:", "onerror", "{{ 7*7 }}"):
        search(page, needle)
        assert page.locator("#f-list article.case").count() > 0, needle
    search(page, "")
    page.click("details:has-text(\"reasoning\") > summary")
    assert events.dialogs == []
    assert events.errors == []
    assert [m for m in events.console if m[0] in ("error", "warning")] == []
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('img, iframe, a[href^=\"javascript\"], [onerror], "
                         "[onload], textarea').length") == 0
    assert [url for url in events.requests if not url.startswith("file://")] == []


def test_hostile_outputs_are_shown_as_text(hostile_report: Path, open_report: Any) -> None:
    page, _ = open_report(hostile_report)
    page.select_option("#f-candidate", label="lora")
    search(page, "__pwned = 'script'")
    shown = page.locator("#f-list pre.text").all_inner_texts()
    assert HOSTILE_OUTPUTS[0] in shown
    search(page, "svg onload")
    assert page.locator("#f-list table.diff td.got").filter(has_text="<svg onload=alert('svg')>").count() == 1


def test_a_100kB_line_does_not_break_the_layout(hostile_report: Path, open_report: Any) -> None:
    page, _ = open_report(hostile_report)
    search(page, "A" * 50)
    cases = page.locator("#f-list article.case")
    assert cases.count() >= 1
    box = cases.first.bounding_box()
    assert box is not None and box["width"] <= 1280 and box["height"] < 700
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_filters_narrow_the_failure_list(hostile_report: Path, open_report: Any) -> None:
    page, _ = open_report(hostile_report)
    total = int(page.get_attribute("html", "data-failures-ready") or 0)
    assert f"of {total} cases" in page.inner_text("#f-count")

    page.select_option("#f-candidate", label="lora")
    assert set(card_texts(page, ".cand")) == {"lora"}
    lora_count = page.inner_text("#f-count")

    page.select_option("#f-check", label="json_valid")
    badges = page.locator("#f-list article.case").evaluate_all(
        "cards => cards.map(c => [...c.querySelectorAll('.badge')].map(b => b.textContent))")
    assert badges and all(any(b.startswith("json_valid") for b in card) for card in badges)
    assert page.inner_text("#f-count") != lora_count

    page.select_option("#f-check", label="any")
    page.select_option("#f-field", label="severity")
    badges = page.locator("#f-list article.case").evaluate_all(
        "cards => cards.map(c => [...c.querySelectorAll('.badge.field')].map(b => b.textContent))")
    assert badges and all("field severity" in card for card in badges)
    differing = page.locator("#f-list table.diff tr.differs th").all_inner_texts()
    assert "severity" in differing

    page.select_option("#f-field", label="any")
    page.select_option("#f-candidate", label="all")
    search(page, "item-00042")
    assert set(card_texts(page, ".id")) == {"item-00042"}

    search(page, "")
    page.click("#f-next")
    assert page.inner_text("#f-page").startswith("page 2 of")


def test_flip_buttons_show_the_flipped_cases(hostile_report: Path, open_report: Any) -> None:
    page, _ = open_report(hostile_report)
    row = page.locator("#flips tr").filter(has=page.locator("td.metric", has_text="exact_match")).first
    candidate = row.locator("td").first.inner_text()
    lost = row.locator("td.flip").first
    expected_count = int(lost.locator("b").inner_text())
    lost.locator("button").click()
    assert page.is_visible("#f-flip")
    assert f"of {expected_count} cases" in page.inner_text("#f-count")
    assert set(card_texts(page, ".cand")) == {candidate}
    page.click("#f-flip-clear")
    assert not page.is_visible("#f-flip")


def test_first_screen_answers_can_we_deploy(hostile_report: Path, open_report: Any) -> None:
    page, _ = open_report(hostile_report)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-first-screen.png"))
    headline = page.locator("#verdict .headline")
    box = headline.bounding_box()
    assert box is not None and box["y"] + box["height"] < 300
    assert headline.inner_text().startswith(("✗ Do not deploy", "✓ Deployable", "? Not deployable yet", "No bars"))
    verdict_box = page.locator("#verdict").bounding_box()
    assert verdict_box is not None and verdict_box["y"] + verdict_box["height"] < 800
    for card in page.locator("#verdict .card").all():
        assert card.locator(".status").inner_text() in {"DEPLOYABLE", "NOT DEPLOYABLE", "UNDECIDED", "NO BARS",
                                                        "NOT EVALUATED", "BASELINE", "NO VERDICT"}


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 items × 4 candidates, judged on a sample of 500 items as a judge budget would allow."""
    run = synthetic_run(10_000, judged_items=500)
    path = tmp_path_factory.mktemp("big") / "report.html"
    path.write_text(render_report(run), encoding="utf-8")
    return path


def test_ten_thousand_items_by_four_candidates_open_in_under_3_seconds(big_report: Path, browser: Any) -> None:
    assert big_report.stat().st_size < 20_000_000
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        started = time.perf_counter()
        page.goto(big_report.as_uri())
        page.wait_for_selector("html[data-failures-ready]")
        seconds = time.perf_counter() - started
        assert errors == []
        assert seconds < 3.0, f"the 10,000-item report took {seconds:.2f} s to open"
        assert page.locator("#f-list article.case").count() == 20
        page.select_option("#f-candidate", label="lora")
        assert set(card_texts(page, ".cand")) == {"lora"}
    finally:
        context.close()
