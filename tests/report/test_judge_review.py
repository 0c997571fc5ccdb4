"""The report's judge review (consistency beside kappa, prompts and raw replies), format
control and repeated-samples sections, from real runs on the tiny model and a scripted judge."""

from __future__ import annotations

from pathlib import Path

from evalkit.api import run_suite
from evalkit.report.render import render_report
from tests.judges.scripted_judge import scripted_judge

REPO = Path(__file__).resolve().parents[2]


def test_report_shows_consistency_prompts_replies_and_the_constrained_control(make_suite,  # type: ignore[no-untyped-def]
                                                                              tiny_model_dir: Path) -> None:
    model = str(tiny_model_dir)
    with scripted_judge("always_a") as judge:
        suite = make_suite(
            generation={"max_new_tokens": 160, "batch_size": 3},
            candidates=[{"name": "base", "model": model},
                        {"name": "base-constrained", "model": model, "constrain": "json_schema"},
                        {"name": "other", "model": model, "prompt": {"system": "One word."}}],
            judges=[{"rubric": str(REPO / "rubrics/classifier_quality.yaml"), "mode": "pairwise", "name": "pw",
                     "min_consistency": 0.8, "limit": 2,
                     "judge": {"provider": "openai", "model": "scripted", "base_url": judge.url,
                               "logprobs": False}}],
        )
        run = run_suite(suite, write=False)
    html = render_report(run)
    assert "position consistency (both orders agree): 0.00" in html
    assert "below min_consistency 0.8" in html and "picks position A in 100%" in html
    assert "Prompts and raw replies" in html and "candidate shown as A" in html and "baseline shown as A" in html
    assert "<script>alert(" not in html and "&lt;script&gt;alert(" in html  # the judge's reply, escaped
    assert 'id="controls"' in html and "(constrained)" in html
    assert "the format constraint alone" in html or "does not beat" in html


def test_report_lists_flaky_items_with_each_sample(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    suite = make_suite(
        generation={"max_new_tokens": 8, "batch_size": 3, "samples": 4, "temperature": 1.0, "seed": 5},
        checks=["exact_match", {"regex": {"pattern": "[aeiou]", "name": "vowel"}}],
    )
    run = run_suite(suite, write=False)
    flaky = run.sections["sampling"]["flaky"]["base"]
    assert flaky, "temperature 1.0 on a random model should make an item flaky"
    html = render_report(run)
    assert 'id="sampling"' in html and "4 samples per item at temperature 1.0, seed 5" in html
    assert f"Flaky items (samples disagree on a pass/fail check): base {len(flaky)}" in html
    assert "sample 4" in html
