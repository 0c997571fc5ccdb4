"""Screenshot a run's HTML report as a reader first sees it (headless Debian Chromium).

Run: .venv/bin/python benchmarks/report_screenshot.py REPORT.html OUT.png [--height 2200]

Never ``playwright install`` (it downloads): this drives the system's ``/usr/bin/chromium``
(``make chromium`` installs it). The page is opened from the file, at 1280 px wide, and
the top ``--height`` pixels of the full page are captured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def main() -> None:
    """Open the report and save the screenshot."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--height", type=int, default=2200, help="pixels of the page to capture")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_load_state("load")
        height = min(args.height, int(page.evaluate("document.documentElement.scrollHeight")))
        page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
        browser.close()
    print(f"{args.out}: 1280 x {height}")


if __name__ == "__main__":
    main()
