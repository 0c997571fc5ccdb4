"""Screenshot `evalkit view`'s diff page (headless Debian Chromium), for docs/view-diff.png.

Run: .venv/bin/python benchmarks/view_screenshot.py docs/view-diff.png [--height 1500]

Builds a small store of two synthetic classifier runs (:func:`evalkit.testing.tiny_model.synthetic_run`,
a day apart), serves it with the real viewer on loopback, opens the diff of the two runs'
``lora`` candidates narrowed to the items whose exact match flipped from pass to fail,
scores one of them, and captures the top of the page at 1280 px wide.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from report_screenshot import ARGS, CHROMIUM

from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run
from evalkit.view.app import Access, ViewConfig, running


def main() -> None:
    """Build the store, serve it, open the diff page and save the screenshot."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--height", type=int, default=1500, help="pixels of the page to capture")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store.db"
        with RunStore(store) as opened:
            for seed, day in ((0, "27"), (1, "28")):
                run = synthetic_run(400, seed=seed, judged_items=40)
                run.started_at = f"2026-11-{day}T10:00:00+00:00"
                opened.save_run(run)
        config = ViewConfig(store_path=store, access=Access.for_host("127.0.0.1"), author="reviewer")
        with running(config) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}diff?a=20261128-100000&b=20261128-100001&ca=lora&cb=lora"
                      "&metric=exact_match&items=pass_to_fail")
            page.locator("article.pair-row").first.locator(".side-b button.mark.fail").click()
            page.wait_for_selector("article.pair-row .labels ul.given li")
            height = min(args.height, int(page.evaluate("document.documentElement.scrollHeight")))
            page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1280, "height": height},
                            full_page=True)
            browser.close()
    print(f"{args.out}: 1280 x {height}")


if __name__ == "__main__":
    main()
