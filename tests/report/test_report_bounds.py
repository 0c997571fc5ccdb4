"""The report bounds what it shows: 1 MB of model text anywhere in a run makes a page of kilobytes."""

from __future__ import annotations

import pytest

from evalkit.checks import Score
from evalkit.report.failures import failure_data
from evalkit.report.render import render_report
from evalkit.testing.tiny_model import synthetic_run

ONE_MB = "\ud800<b>" + "x" * 1_000_000


def test_huge_predictions_warnings_and_reasons_are_cut_where_shown() -> None:
    run = synthetic_run(20, candidates=("base", "lora"))
    small = len(render_report(run).encode("utf-8"))
    for candidate in run.candidates:
        for item in candidate.items:
            item.prediction = ONE_MB
            item.scores = {name: type(score)(0.0, ONE_MB) for name, score in item.scores.items()}
    run.warnings.append(f"a judge replied: {ONE_MB}")
    html = render_report(run)
    size = len(html.encode("utf-8"))  # encodable: the lone surrogate did not survive into the page
    assert size < small + 1_000_000, (small, size)  # 40 MB of model text, under 1 MB more page
    assert "characters in all" in html
    assert "<b>xxxx" not in html  # the model's markup is text, never a tag


def test_failure_cases_are_capped_at_the_worst_per_candidate_and_the_page_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import evalkit.report.failures as failures_module

    run = synthetic_run(60, candidates=("base", "lora"), judged_items=0)
    lora = run.candidate("lora")
    failing = [item for item in lora.items if any(s.value < 1.0 for s in item.scores.values())]
    # The last failing item fails every pass/fail metric: the worst, whatever its position.
    failing[-1].scores = {name: Score(0.0, "wrong") for name in failing[-1].scores}
    uncapped = failure_data(run, {}, {"lora": "base"})
    monkeypatch.setattr(failures_module, "MAX_FAILURES_SHOWN", 3)
    capped = failure_data(run, {}, {"lora": "base"})
    assert capped.total == uncapped.total > capped.shown
    lora_records = [r for r in capped.payload["records"] if capped.candidates[r[0]] == "lora"]
    assert len(lora_records) == 3
    assert capped.payload["items"][lora_records[0][1]][0] == failing[-1].item_id  # worst first
    monkeypatch.setattr("evalkit.report.render.MAX_FAILURES_SHOWN", 3)
    html = render_report(run)
    assert f"Showing {capped.shown} of {capped.total}" in html and "results.jsonl" in html


def test_a_large_run_makes_a_report_whose_size_does_not_grow_with_its_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evalkit.report.failures.MAX_FAILURES_SHOWN", 20)  # reached by both sizes
    sizes = {}
    for n_items in (500, 3_000):
        run = synthetic_run(n_items, candidates=("base", "lora"), judged_items=0)
        sizes[n_items] = len(render_report(run).encode("utf-8"))
    # Six times the items (thousands more failures, ~150 bytes each if embedded): the same page size.
    assert abs(sizes[3_000] - sizes[500]) < 0.02 * sizes[500], sizes
