"""Report scale: file size, render time and browser open time for 10,000 items × 4 candidates.

Run: .venv/bin/python benchmarks/bench_report.py [--items 10000] [--judged 500]

Renders the synthetic classifier run (evalkit.testing.tiny_model: four candidates, every
section filled, the comparison computed) at 1,000 and at N items, opens each in
Debian's headless Chromium and prints the figures side by side with their ratio, so a
change in how the report scales shows up as a ratio far from the item ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from evalkit.report.render import render_report
from evalkit.testing.tiny_model import synthetic_run

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def measure(items: int, judged: int, browser: object, folder: Path, repeats: int = 3) -> dict[str, float]:
    run = synthetic_run(items, judged_items=judged)
    renders = []
    for _ in range(repeats):
        started = time.perf_counter()
        html = render_report(run)
        renders.append(time.perf_counter() - started)
    path = folder / f"report-{items}.html"
    path.write_text(html, encoding="utf-8")
    opens = []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
        page = context.new_page()
        started = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-failures-ready]")
        opens.append(time.perf_counter() - started)
        context.close()
    return {"items": items, "candidates": len(run.candidates), "size_mb": path.stat().st_size / 1e6,
            "render_s": statistics.median(renders), "open_s": statistics.median(opens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--judged", type=int, default=500, help="items with judge scores")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        small = measure(1_000, args.judged, browser, Path(folder))
        large = measure(args.items, args.judged, browser, Path(folder))
        browser.close()
    print(f"{'':24}{'1,000 items':>14}{f'{args.items:,} items':>16}{'ratio':>9}")
    for key, label in (("size_mb", "file size (MB)"), ("render_s", "render (s, median of 3)"),
                       ("open_s", "browser open (s, med 3)")):
        print(f"{label:24}{small[key]:>14.2f}{large[key]:>16.2f}{large[key] / small[key]:>9.1f}")
    print(f"candidates: {int(large['candidates'])}; open = page load + embedded data parsed + first page drawn")


if __name__ == "__main__":
    main()
