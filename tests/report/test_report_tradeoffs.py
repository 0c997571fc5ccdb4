"""The sweep, slice and cost sections of the report, rendered and looked at in Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.checks import Score
from evalkit.comparison.result import ThresholdPolicy
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.report.render import render_report
from evalkit.slices.compare import slices_section
from evalkit.slices.spec import SliceSpec
from evalkit.usage.stage import GenerationUsage, PriceSpec, UsageMeter

CATEGORIES = ["billing", "shipping", "account_access", "technical"]


def tradeoff_run() -> RunResult:
    """Base and lora on 400 items; lora loses billing; a sweep of three checkpoints; usage for both."""
    rng = np.random.default_rng(3)
    base = (rng.random(400) < 0.8).astype(float)
    cand = base.copy()
    billing = np.array([i % 4 == 0 for i in range(400)])
    cand[billing & (rng.random(400) < 0.6)] = 0.0
    cand[~billing] = 1.0

    def result(name: str, values: np.ndarray) -> CandidateResult:
        return CandidateResult(name, items=[
            ItemResult(item_id=f"i{i}", fields={"output": json.dumps({"category": CATEGORIES[i % 4]})}, prompt="p",
                       expected="e", prediction="<b>x</b>",
                       scores={"exact_match": Score(float(v), "" if v else "wrong label")}) for i, v in enumerate(values)])

    run = RunResult("r1", "demo", "", "base", [result("base", base), result("lora", cand)], "2026-12-01T10:00:00")
    run.set_section("slices", slices_section(run, [SliceSpec.model_validate("output.category")], ThresholdPolicy()))
    run.sections["sweep"] = {
        "name": "ckpt", "task_metric": "exact_match", "benchmark": "mmlu", "max_drop": "3%", "baseline": "base",
        "baseline_task": 0.8, "baseline_benchmark": 0.3, "pick": "ckpt-step-4", "reason": "best exact_match",
        "points": [{"candidate": f"ckpt-step-{s}", "step": s, "adapter": "/a", "task": t, "benchmark": b,
                    "bar": bar, "bar_message": ""}
                   for s, t, b, bar in ((2, 0.5, 0.3, "passed"), (4, 0.85, 0.29, "passed"), (6, 0.9, 0.2, "failed"))]}
    for name, seconds in (("base", 0.4), ("lora", 0.3)):
        meter = UsageMeter()
        fake = type("Backend", (), {"last_usage": [GenerationUsage(120, 30, seconds, 0.05)] * 400})()
        meter.record([f"i{i}" for i in range(400)], fake, seconds * 25)
        run.set_section_entry("usage", name, meter.summary(400, ("local", PriceSpec(per_hour=1.0))))
    return run


def test_sections_render_with_the_pick_the_flagged_slice_and_the_cost_plot() -> None:
    html = render_report(tradeoff_run())
    for anchor in ('id="sweep"', 'id="slices"', 'id="usage"'):
        assert anchor in html
    assert "Pick: <b>ckpt-step-4</b>" in html and "forgetting curve" in html
    assert "Regressed: exact_match[category=billing]" in html
    assert "exact_match against cost per 1,000 items" in html
    assert html.count('<td class="regressed"') == 1


def test_browser_shows_the_slice_verdict_colours_and_charts(tmp_path: Path, open_report: Any) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_report(tradeoff_run()), encoding="utf-8")
    page, events = open_report(path)
    assert events.errors == [] and events.dialogs == []
    red = page.eval_on_selector("#slices td.regressed", "e => getComputedStyle(e).backgroundColor")
    plain = page.eval_on_selector("#slices td.no_change, #slices td.improved",
                                  "e => getComputedStyle(e).backgroundColor")
    assert red != plain
    assert page.locator("#sweep svg polyline").count() == 2
    assert page.locator("#usage svg circle").count() == 2
    assert page.locator("nav a[href='#slices']").count() == 1
