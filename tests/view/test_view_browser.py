"""The review loop in headless Chromium (Debian's, through playwright), as a person does it.

Open a run, diff it with the next one, narrow to the flipped items, label three of them,
export the labels, and read the exports with the loaders `evalkit rubric calibrate` and
`evalkit train --method dpo` use. One test: it costs seconds, and it is the only check
that the page's own JavaScript writes labels under the CSP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect
from view_helpers import FIRST, RUBRIC, SECOND

from evalkit.cli import main
from evalkit.comparison.compare import compare_runs
from evalkit.data.items import load_items
from evalkit.judges.calibration import load_labels
from evalkit.judges.rubric import load_rubric
from evalkit.store import RunStore
from evalkit.train.lora import preference_records

pytestmark = pytest.mark.browser


def test_open_diff_filter_label_export(view_store: Path, serve: Any, browser: Any, tmp_path: Path,
                                       rubric_criteria: dict[str, list[str]]) -> None:
    with RunStore(view_store, read_only=True) as store:
        exact = compare_runs(store.load_run(FIRST), store.load_run(SECOND), baseline="lora",
                             candidate="lora").candidates["lora"].metrics["exact_match"]
    assert len(exact.pass_to_fail) >= 3, "the fixture needs three items that flipped pass -> fail"
    with serve(view_store, rubrics=rubric_criteria) as url:
        origin = url.rstrip("/")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        dialogs: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        # A run: its verdict and metrics, from the store.
        page.goto(f"{origin}/runs/{FIRST}")
        assert page.locator("section.verdict h2").inner_text().startswith("Verdict:")
        # Its suite, then two runs picked to diff.
        page.click("p.crumbs a:has-text('classifier')")
        page.check(f'input[name="a"][value="{FIRST}"]')
        page.check(f'input[name="b"][value="{SECOND}"]')
        with page.expect_navigation():
            page.click("form.pick button[type=submit]")
        for side in ("ca", "cb"):
            with page.expect_navigation():
                page.select_option(f'form.pair select[name="{side}"]', "lora")
        assert page.locator("table.stats tr.verdict-" + exact.verdict, has_text="exact_match").count() == 1
        # Only the items exact_match flipped from pass to fail, through the filter form.
        with page.expect_navigation():
            page.select_option('form.filters select[name="metric"]', "exact_match")
        with page.expect_navigation():
            page.select_option("#item-set", "pass_to_fail")
        state = parse_qs(urlsplit(page.url).query)
        assert state["items"] == ["pass_to_fail"] and state["metric"] == ["exact_match"]
        rows = page.locator("article.pair-row")
        shown = rows.evaluate_all("rows => rows.map(r => r.dataset.itemId)")
        assert shown == exact.pass_to_fail[:50]
        # Run B's hostile outputs are among them, shown as text and inert (checked below: no
        # dialog, no error, no request elsewhere, nothing set by their scripts).
        assert page.locator(".side-b pre.out", has_text="<script>window.__pwned = 'script'").count() == 1
        assert page.locator(".side-b pre.out", has_text='<img src=x onerror=').count() == 1

        # Label three items: a preference (A pass, B fail), a rubric scoring, a fail.
        first, second, third = rows.nth(0), rows.nth(1), rows.nth(2)
        first.locator(".side-a button.mark.pass").click()
        first.locator(".side-b button.mark.fail").click()
        second.locator(".side-b details.rubric summary").click()
        for criterion, level in (("format", 5), ("accuracy", 3), ("style", 4)):
            second.locator(f'.side-b button[data-criterion="classifier_quality.{criterion}"]'
                           f'[data-value="{level}"]').click()
        third.locator(".side-b button.mark.fail").click()
        given = page.locator(".labels ul.given li")  # waits: the page's script adds each label it saved
        expect(given).to_have_count(6)
        # An undo takes one back; the page reloaded from the URL shows what the store holds.
        third.locator(".side-b button.mark.pass").click()
        expect(given).to_have_count(7)
        third.locator(".side-b ul.given li", has_text="= pass").locator("button.undo").click()
        expect(given).to_have_count(6)
        page.reload()
        assert page.locator(".labels ul.given li").count() == 6
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('main img, main iframe, main [onerror], main [onload]').length") == 0
        context.close()
    assert errors == [] and dialogs == []
    assert [r for r in requests if not r.startswith(origin + "/")] == []

    rubric = load_rubric(RUBRIC)
    calibration, dpo = tmp_path / "calibration.jsonl", tmp_path / "dpo.jsonl"
    assert main(["labels", "export", "--store", str(view_store), "--format", "calibration",
                 "--rubric", str(RUBRIC), "--out", str(calibration)]) == 0
    assert main(["labels", "export", "--store", str(view_store), "--format", "dpo", "--out", str(dpo)]) == 0
    examples = load_labels(calibration, rubric)
    assert [(e.id.split("/")[2], e.scores) for e in examples] == [
        (shown[1], {"format": 5, "accuracy": 3, "style": 4})]
    pairs = preference_records(load_items(dpo), dpo)
    with RunStore(view_store, read_only=True) as store:
        a = next(i for i in store.load_run(FIRST).candidate("lora").items if i.item_id == shown[0])
        b = next(i for i in store.load_run(SECOND).candidate("lora").items if i.item_id == shown[0])
    assert pairs == [{"prompt": [{"role": "user", "content": a.prompt}],
                      "chosen": [{"role": "assistant", "content": a.prediction}],
                      "rejected": [{"role": "assistant", "content": b.prediction}]}]
