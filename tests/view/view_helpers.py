"""Shared by the viewer's tests and fixtures: the fixture store's runs, and page helpers."""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.report.render import render_report
from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run

REPO = Path(__file__).resolve().parents[2]
RUBRIC = REPO / "rubrics" / "classifier_quality.yaml"
ITEMS = 120
# Run ids of the fixture store: two runs of the classifier suite a day apart (the second
# with hostile outputs), and a run of another suite.
FIRST, SECOND, OTHER_SUITE = "20261128-100000", "20261128-100001", "20261128-100002"
def build_store(path: Path, items: int = ITEMS) -> Path:
    """Store three synthetic runs (the second hostile), the first with a run directory holding its report."""
    with RunStore(path) as store:
        for seed, day, suite, hostile in ((0, "27", "classifier", False), (1, "28", "classifier", True),
                                          (2, "28", "other-suite", False)):
            run = synthetic_run(items, seed=seed, hostile=hostile, judged_items=20)
            run.suite_name, run.started_at = suite, f"2026-11-{day}T10:00:0{seed}+00:00"
            store.save_run(run)
            if seed == 0:
                run_dir = path.parent / "reports" / run.run_id
                run_dir.mkdir(parents=True)
                (run_dir / "report.html").write_text(render_report(run), encoding="utf-8")
                store.set_run_dir(run.run_id, run_dir)
    return path


def csrf_of(html: str) -> str:
    """Return the CSRF token a page carries."""
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)
