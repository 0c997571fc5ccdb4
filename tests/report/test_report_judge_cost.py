"""API judges' tokens and money in the report's cost section, looked at in Chromium."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evalkit.record.results import RunResult
from evalkit.report.render import render_report
from evalkit.usage.stage import DEFAULT_PRICES, RequestTally
from tests.report.test_report_tradeoffs import tradeoff_run

pytestmark = pytest.mark.browser


def judged_run() -> RunResult:
    """The trade-off run, judged by gpt-4o-mini: two requests, 2,000 tokens in and 150 out."""
    run = tradeoff_run()
    tally = RequestTally()
    # The SDK's usage objects carry these two fields; the judge adds each response's.
    tally.add(SimpleNamespace(prompt_tokens=1200, completion_tokens=90), 0.4)
    tally.add(SimpleNamespace(prompt_tokens=800, completion_tokens=60), 0.6)
    run.sections["judges"] = {"quality": {
        "rubric": "quality", "judge": {"provider": "openai", "model": "gpt-4o-mini"}, "mode": "pointwise",
        "calibration": None, "per_candidate": {}, "errors": {}, "failures": {}, "transcripts": {},
        "tally": {"tasks": 2, "errors": 0},
        "usage": tally.summary(("gpt-4o-mini*", DEFAULT_PRICES["gpt-4o-mini*"]), 1.0)}}
    return run


def test_the_cost_section_lists_each_api_judge_with_its_money(tmp_path: Path, open_report: Any) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_report(judged_run()), encoding="utf-8")
    page, events = open_report(path)
    assert events.errors == []
    cells = page.locator("#usage table.judge-cost tr").nth(1).locator("td").all_inner_texts()
    expected = (2000 * 0.15 + 150 * 0.6) / 1e6
    assert cells == ["quality", "openai:gpt-4o-mini", "2", "2000 / 150", "0.5 s", "0.59 s", f"{expected:.4g} USD"]
    assert page.locator("#usage svg circle").count() == 2  # the candidates' plot is still there
