"""The report bounds what it shows: 1 MB of model text anywhere in a run makes a page of kilobytes."""

from __future__ import annotations

from evalkit.report import render_report
from evalkit.testing_runs import synthetic_run

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
