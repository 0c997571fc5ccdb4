"""The report rendered without a browser: escaping, CSP, sections, verdicts, data."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from html.parser import HTMLParser

import pytest
from report_files import script_elements

from evalkit.checks import Score
from evalkit.comparison.compare import compare_candidates
from evalkit.record.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.report.charts import delta_bar_chart, trend_chart
from evalkit.report.failures import MAX_TEXT_CHARS
from evalkit.report.render import confusion_matrices, json_for_script, render_report
from evalkit.testing.tiny_model import HOSTILE_OUTPUTS, synthetic_run


class TagCollector(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = TagCollector()
    collector.feed(page)
    return collector.tags


def failure_payload(page: str) -> dict:
    (_, content), = [s for s in script_elements(page) if 'type="application/json"' in s[0]]
    return json.loads(content)


def item(item_id: str, expected: dict, prediction: str, **scores: float) -> ItemResult:
    return ItemResult(item_id=item_id, fields={"input": f"message {item_id}"}, prompt="p",
                      expected=json.dumps(expected), prediction=prediction,
                      scores={name: Score(value, "" if value == 1.0 else f"{name} failed")
                              for name, value in scores.items()})


def small_run(base_right: int, lora_right: int, n: int = 60) -> RunResult:
    """Two candidates; each gets exact_match right on the first `*_right` items."""
    truth = {"severity": "low"}
    candidates = []
    for name, right in (("base", base_right), ("lora", lora_right)):
        items = [item(f"i{k}", truth, json.dumps(truth) if k < right else '{"severity": "high"}',
                      exact_match=1.0 if k < right else 0.0) for k in range(n)]
        candidates.append(CandidateResult(name=name, items=items, seconds=2.0))
    return RunResult(run_id="r1", suite_name="suite", suite_path="s.yaml", baseline="base",
                     candidates=candidates, started_at="2026-11-28T10:00:00+00:00",
                     finished_at="2026-11-28T10:01:30+00:00")


# --------------------------------------------------------------------------- safety

def test_only_our_two_script_elements_exist(hostile_html: str) -> None:
    scripts = script_elements(hostile_html)
    assert [tag for tag, _ in scripts] == ['<script type="application/json" id="failure-data">', "<script>"]
    assert len(re.findall(r"<script\b", hostile_html, flags=re.IGNORECASE)) == 2


def test_no_event_handler_or_javascript_url_attributes(hostile_html: str) -> None:
    tags = tags_of(hostile_html)
    assert not [(t, a) for t, a in tags if any(name.startswith("on") for name in a)]
    assert not [(t, a) for t, a in tags if any("javascript:" in (v or "").lower() for v in a.values())]
    assert not [t for t, _ in tags if t in {"img", "iframe", "object", "embed", "a", "textarea", "base", "link"}
                and t != "a"]


def test_hostile_text_appears_escaped(hostile_html: str) -> None:
    assert html.escape("<b>leakage</b>", quote=False) in hostile_html  # the warning, escaped
    assert "<b>leakage</b>" not in hostile_html
    assert "&lt;script&gt;window.__pwned=&#39;judge&#39;&lt;/script&gt;" in hostile_html


def test_embedded_json_holds_hostile_text_exactly_and_cannot_close_its_element(hostile_html: str) -> None:
    (_, raw), = [s for s in script_elements(hostile_html) if "application/json" in s[0]]
    assert "<" not in raw and ">" not in raw and "&" not in raw
    assert "\u2028" not in raw and "\u2029" not in raw
    payload = json.loads(raw)
    predictions = {record[2] for record in payload["records"]}
    for text in HOSTILE_OUTPUTS[:6]:
        assert text in predictions
    assert any(p.startswith("A" * 1000) and "characters in all" in p for p in predictions)
    assert max(len(p) for p in predictions) < MAX_TEXT_CHARS + 100


@pytest.mark.parametrize("text", ["</script><script>alert(1)</script>", "<!--", "a&amp;b", "\u2028\u2029",
                                  "]]>", "\ud800 lone surrogate"])
def test_json_for_script_round_trips_without_unsafe_characters(text: str) -> None:
    embedded = str(json_for_script({"t": text}))
    assert not set(embedded) & set("<>&\u2028\u2029")
    assert json.loads(embedded) == {"t": text}


def test_lone_surrogates_in_model_output_still_render_as_utf8() -> None:
    run = small_run(30, 30)
    run.candidates[1].items[31].prediction = "broken \ud800 text"
    run.candidates[1].items[31].item_id = "id \udc00"
    page = render_report(run)
    page.encode("utf-8")  # a run directory is written as UTF-8


def test_csp_forbids_network_and_allows_only_the_inline_script_by_hash(hostile_html: str) -> None:
    (csp,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', hostile_html)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-eval" not in csp
    (_, script), = [s for s in script_elements(hostile_html) if s[0] == "<script>"]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert hostile_html.index("Content-Security-Policy") < hostile_html.index("<script")


def test_nothing_is_loaded_from_anywhere(hostile_html: str) -> None:
    for tag, attrs in tags_of(hostile_html):
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)


# ------------------------------------------------------------------------- sections

def test_sections_appear_only_with_their_data() -> None:
    run = small_run(30, 30)
    page = render_report(run)
    for absent in ("capability", "judges", "flips", "history"):
        assert f'id="{absent}"' not in page
    for present in ("verdict", "metrics", "failures", "metadata"):
        assert f'id="{present}"' in page


def test_full_run_has_every_section(hostile_html: str) -> None:
    for section in ("verdict", "warnings", "metrics", "fields", "capability", "judges", "failures", "flips",
                    "history", "metadata"):
        assert re.search(f'<section[^>]* id="{section}"', hostile_html), section


def test_a_significant_regression_blocks_and_is_quantified() -> None:
    run = small_run(base_right=55, lora_right=20)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    page = render_report(run)
    assert "Do not deploy lora: 1 regression against base" in page
    (card,) = re.findall(r'<div class="card blocked" data-candidate="lora">(.*?)</div>', page, re.DOTALL)
    assert "exact_match \u221258.3 pt" in card and "95% CI [" in card and "p &lt; 0.001" in card
    assert "allowed drop 3%" in card
    assert re.search(r'<td class="regressed"[^>]*><span class="value">33.3%</span>', page)
    assert page.startswith("<!DOCTYPE html>") and "<title>NOT DEPLOYABLE" in page


def test_a_regression_scored_by_an_uncalibrated_judge_blocks_nothing_and_says_why() -> None:
    run = small_run(base_right=20, lora_right=58)
    metric = "judge.quality.format"
    for candidate, score in zip(run.candidates, (5.0, 1.0), strict=True):
        for entry in candidate.items:
            entry.scores[metric] = Score(score, "")
    run.sections["comparison"] = compare_candidates(run).to_dict()
    assert "Do not deploy lora" in render_report(run)  # a judge that counts: its regression blocks
    run.sections["judges"] = {"quality": {"calibration": {"kappa": {"format": 0.0}, "calibrated": False,
                                                          "min_kappa": 0.4}}}
    page = render_report(run)
    assert "Do not deploy lora" not in page and "No bars: lora" in page
    (card,) = re.findall(r'<div class="card no_bars" data-candidate="lora">(.*?)</div>', page, re.DOTALL)
    assert "not counted (the judge&#39;s scores do not count): judge.quality.format" in card


def test_no_regression_without_bars_is_no_bars_never_deployable() -> None:
    run = small_run(base_right=40, lora_right=58)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    page = render_report(run)
    assert "Deployable" not in page and "card deployable" not in page
    assert "No bars: lora — nothing to gate on; no regression against base" in page
    assert re.search(r'<div class="card no_bars" data-candidate="lora">.*?NO BARS', page, re.DOTALL)
    assert re.search(r'<div class="card baseline" data-candidate="base">.*?BASELINE', page, re.DOTALL)
    assert "exact_match +30.0 pt" in page  # the improvement, named on the card


def test_deployable_only_when_its_own_bars_all_passed() -> None:
    run = small_run(base_right=40, lora_right=58)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    run.sections["bars"] = [{"candidate": "lora", "expression": "exact_match >= 0.80", "status": "passed",
                             "passed": True, "value": 0.97, "message": "exact_match = 0.967"}]
    page = render_report(run)
    assert "✓ Deployable: lora — every bar met, no regression against base" in page
    assert "<title>deployable" in page


def test_an_undecided_bar_is_never_green() -> None:
    run = small_run(base_right=40, lora_right=40)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    bar = {"candidate": "lora", "expression": "mmlu max_drop 3%", "status": "inconclusive", "passed": False,
           "value": 0.25, "message": "undecided", "items_needed": 2854, "inconclusive_policy": "fail"}
    run.sections["bars"] = [bar]
    page = render_report(run)
    assert "Not deployable yet: lora — 1 bar the data cannot decide" in page
    assert "UNDECIDED" in page and "<title>UNDECIDED" in page and "~2,854 items" in page
    run.sections["bars"] = [{**bar, "inconclusive_policy": "warn"}]
    assert "(not gating: inconclusive: warn)" in render_report(run)


def test_failed_bar_blocks_but_an_uncounted_one_does_not() -> None:
    run = small_run(base_right=40, lora_right=40)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    run.sections["bars"] = [{"candidate": "lora", "expression": "judge.q.format >= 4.0", "status": "not_counted",
                             "passed": False, "value": 3.1, "message": "judge not calibrated"}]
    assert "No bars: lora" in render_report(run)  # an uncounted bar is no evidence either way
    run.sections["bars"].append({"candidate": "lora", "expression": "exact_match >= 0.80", "status": "failed",
                                 "passed": False, "value": 0.667, "message": "exact_match = 0.667"})
    page = render_report(run)
    assert "Do not deploy lora: 1 unmet bar" in page
    assert "bar unmet: exact_match &gt;= 0.80 — exact_match = 0.667" in page


def test_without_a_comparison_there_is_no_verdict_but_plain_deltas() -> None:
    page = render_report(small_run(30, 45))
    assert "No verdict: this run has no comparison against the baseline" in page
    assert "+25.0 pt" in page


def test_a_candidate_let_be_missing_is_shown_as_not_evaluated() -> None:
    run = small_run(30, 30)
    run.candidates.append(CandidateResult(name="merged", status="skipped", message="merged model not found"))
    run.sections["comparison"] = compare_candidates(run).to_dict()
    page = render_report(run)
    assert re.search(r'data-candidate="merged">.*?NOT EVALUATED.*?merged model not found', page, re.DOTALL)


def test_confusion_matrix_counts_expected_against_predicted() -> None:
    truth_low, truth_high = {"severity": "low", "category": "billing"}, {"severity": "high", "category": "shipping"}
    items = [
        item("a", truth_low, json.dumps(truth_low)),
        item("b", truth_low, json.dumps({"severity": "high", "category": "billing"})),
        item("c", truth_high, json.dumps({"severity": "urgent", "category": "shipping"})),
        item("d", truth_high, "not json"),
    ]
    run = RunResult("r", "s", "", "base", [CandidateResult("base", items=items)], "2026-11-28T10:00:00")
    severity, category = confusion_matrices(run)
    (matrix,) = severity
    assert matrix.labels == ["high", "low"] and matrix.columns == ["high", "low", "(other)", "(missing)"]
    assert matrix.counts == [[0, 0, 1, 1], [1, 1, 0, 0]]
    assert matrix.accuracy == 0.25
    assert category[0].counts == [[2, 0, 0], [0, 1, 1]]


def test_flips_are_listed_and_linked_to_the_failure_viewer() -> None:
    run = small_run(base_right=50, lora_right=20)
    run.candidates[1].items[55].prediction = run.candidates[1].items[55].expected
    run.candidates[1].items[55].scores["exact_match"] = Score(1.0)
    run.sections["comparison"] = compare_candidates(run).to_dict()
    page = render_report(run)
    (row,) = re.findall(r'<tr><td>lora</td><td class="metric">exact_match</td>(.*?)</tr>', page, re.DOTALL)
    lost, gained = re.findall(r'<td class="flip[^"]*">(.*?)</td>', row, re.DOTALL)
    assert "<b>30</b>" in lost and 'data-flip="0"' in lost and "i20, i21" in lost
    assert "<b>1</b>" in gained and 'data-flip="1"' in gained and "i55" in gained
    payload = failure_payload(page)
    p2f, f2p = payload["flips"]
    assert payload["candidates"][p2f["candidate"]] == "lora" and len(p2f["items"]) == 30
    assert payload["candidates"][f2p["candidate"]] == "base"
    assert [payload["items"][i][0] for i in f2p["items"]] == ["i55"]


def test_capability_names_the_worst_subjects_and_draws_them() -> None:
    run = synthetic_run(20, with_comparison=False)
    page = render_report(run)
    section = page[page.index('id="capability"'):page.index('id="judges"')]
    assert "Worst subjects:" in section and "(n=10)" in section
    assert section.count('<svg class="chart"') == 3  # one per non-baseline candidate
    assert "mmlu_mini: lora vs base, per subject" in section


def test_judges_show_calibration_and_escaped_reasoning(hostile_html: str) -> None:
    section = hostile_html[hostile_html.index('id="judges"'):hostile_html.index('id="failures"')]
    assert "NOT calibrated" in section and "correctness 0.31" in section
    assert "Judgments that failed (each scored as a failure: the minimum, or a loss; bars on this judge fail beyond its max_failures): merged 1" in section
    assert "&lt;script&gt;window.__pwned=&#39;judge&#39;&lt;/script&gt; terrible" in section


def test_history_charts_need_an_earlier_run() -> None:
    run = synthetic_run(20, with_comparison=False)
    assert 'id="history"' not in render_report(run)
    earlier = synthetic_run(20, seed=3, with_comparison=False)
    page = render_report(run, history=[earlier.summary()])
    section = page[page.index('id="history"'):page.index('id="metadata"')]
    assert section.count('<svg class="chart"') >= 3 and "exact_match" in section and "mmlu_mini" in section


def test_metadata_lists_fingerprints_command_and_throughput() -> None:
    run = small_run(30, 30)
    run.candidates[1].identity = CandidateIdentity("smollm2-135m-instruct", "f" * 64, "adapters/lora",
                                                   "a" * 64, "hf", "c" * 64)
    run.dataset_hash, run.command, run.evalkit_version = "d" * 64, "evalkit run suites/x.yaml", "0.1.0"
    page = render_report(run)
    section = page[page.index('id="metadata"'):]
    for text in ("f" * 64, "a" * 64, "c" * 64, "d" * 64, "evalkit run suites/x.yaml", "0.1.0", "1 min 30 s",
                 "<td>30.00</td>"):
        assert text in section, text


def test_charts_escape_their_labels() -> None:
    bars = str(delta_bar_chart("t <b>", ["<script>x</script>", "$y$"], [-2.0, 1.0]))
    trend = str(trend_chart("m", ["r1", "<i>r2</i>"], {"<lora>": [0.5, 0.6]}, percent=True))
    for svg in (bars, trend):
        assert "<script" not in svg and "<b>" not in svg and "<i>" not in svg and "<lora>" not in svg
    assert "&lt;script&gt;x&lt;/script&gt;" in bars and "$y$" in bars
