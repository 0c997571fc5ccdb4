"""The bars table: every bar of a run in the report (passed ones too) and in `evalkit run`, from one view model.

The runs' bars are checked by evalkit itself (:mod:`bar_runs`: a synthetic classifier
run, compared and barred as the run's stages do), so the statuses are real outcomes.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from bar_runs import run_with_bars
from rich.console import Console

from evalkit.bars.spec import BarSpec
from evalkit.bars.view import bar_rows, candidate_means, metric_rows
from evalkit.commands.run import bars_table
from evalkit.record.results import RunResult, bars_section
from evalkit.report.render import render_report
from evalkit.testing.tiny_model import synthetic_run

# One bar of each outcome, with margins no interval method could flip: lora's exact
# match is ~0.9 (>= 0.5 passes); the forgetful control's bits per byte rise by 30% (a 3%
# bar fails); lora's 60 documents scatter far wider than 3% (undecided); the synthetic
# judge is not calibrated (not counted).
BARS = [BarSpec.of("lora", "exact_match >= 0.5"), BarSpec.of("forgetful", "general_text max_drop 3%"),
        BarSpec.of("lora", "general_text max_drop 3%"), BarSpec.of("lora", "judge.classifier_quality.format >= 4.0"),
        BarSpec.of("forgetful", "exact_match >= 0.99"), BarSpec.of("lora", "no significant regression")]


class _BarsTable(HTMLParser):
    """Collect the cells of each row of the report's bars table (``#bars tr.bar``), with each row's class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, dict[str, str]]] = []
        self._in_bars = False
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self._in_bars = found.get("id") == "bars"
        elif self._in_bars and tag == "tr" and "bar" in (found.get("class") or "").split():
            self.rows.append((found.get("class") or "", {}))
        elif self._in_bars and tag == "td" and self.rows:
            self._cell = found.get("class") or ""
            self.rows[-1][1][self._cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        elif tag == "section":
            self._in_bars = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.rows[-1][1][self._cell] += data


def table_rows(html: str) -> list[tuple[str, dict[str, str]]]:
    """Return (row class, cell class -> text) for each row of the report's bars table."""
    parser = _BarsTable()
    parser.feed(html)
    return parser.rows


@pytest.fixture(scope="module")
def barred_run() -> RunResult:
    return run_with_bars(BARS)


def test_the_fixture_holds_every_outcome(barred_run: RunResult) -> None:
    statuses = [record.status for record in bars_section(barred_run.sections)]
    assert statuses == ["passed", "failed", "inconclusive", "not_counted", "failed", "inconclusive"]


def test_the_report_lists_every_bar_with_its_status(barred_run: RunResult) -> None:
    html = render_report(barred_run)
    records = bars_section(barred_run.sections)
    rows = table_rows(html)
    assert [(cells["candidate"], cells["expression"]) for _, cells in rows] == \
        [(record.candidate, record.expression) for record in records]
    labels = {"passed": "passed", "failed": "failed", "inconclusive": "inconclusive, blocks",
              "not_counted": "not counted"}
    assert [cells["status"] for _, cells in rows] == [labels[record.status] for record in records]
    # The status is the row's class too: the CSS colours it.
    assert [row_class.split() for row_class, _ in rows] == [["bar", record.status] for record in records]


def test_each_row_says_its_value_interval_and_what_decides_it(barred_run: RunResult) -> None:
    records = bars_section(barred_run.sections)
    cells = [row for _, row in table_rows(render_report(barred_run))]
    passed, failed_drop, undecided, not_counted, failed_threshold, _ = zip(records, cells, strict=True)
    # A threshold bar: the mean as a share and its interval, decided against its limit.
    record, row = passed
    assert row["value"] == f"{record.value * 100:.1f}%" and row["interval"].startswith("[")
    assert row["decide"] == f"decided on {record.n_items} items: meets >= 50.0%"
    assert failed_threshold[1]["decide"].startswith("decided on 60 items: misses >= 99.0%")
    # A drop bar's value is the change against the baseline (bits per byte rose), in the
    # metric's own units, with both values beside it and the paired change's interval.
    record, row = failed_drop
    assert record.value is not None and record.baseline_value is not None
    # (the cell's two spans, the change and the values below it, read as one text here)
    assert row["value"] == f"+{record.value - record.baseline_value:.4f}{record.baseline_value:.4f} → {record.value:.4f}"
    assert row["interval"].startswith("[+") and row["decide"] == "decided on 60 paired items: beyond the allowed 3%"
    # An undecided bar says how many paired items would decide it.
    record, row = undecided
    assert record.items_needed and record.items_needed > record.n_items
    assert row["decide"] == f"{record.n_items} paired items cannot decide it; ~{record.items_needed:,} would"
    # A bar that does not count says why.
    assert "not calibrated" in not_counted[1]["decide"]


def test_an_undecided_bar_under_inconclusive_warn_says_it_only_warns() -> None:
    run = run_with_bars(BARS[2:3], inconclusive="warn")
    [(row_class, cells)] = table_rows(render_report(run))
    assert row_class == "bar inconclusive" and cells["status"] == "inconclusive, warns only"


def test_the_bars_section_follows_the_verdict_with_a_nav_entry(barred_run: RunResult) -> None:
    html = render_report(barred_run)
    verdict_end = html.index("</section>", html.index('id="verdict"'))
    assert html.index("<section", verdict_end) == html.index('<section id="bars">')
    assert '<a href="#verdict">Verdict</a><a href="#bars">Bars</a>' in html


def test_a_run_without_bars_has_no_bars_section() -> None:
    run = synthetic_run(20)
    run.sections.pop("bars")
    html = render_report(run)
    assert 'id="bars"' not in html and 'href="#bars"' not in html
    assert bar_rows(run) == []


def test_every_text_in_the_bars_table_is_escaped() -> None:
    run = run_with_bars(BARS[:1])
    run.sections["bars"][0]["message"] = "<script>window.__pwned='bar'</script> failed"
    run.sections["bars"][0]["status"] = "failed"
    html = render_report(run)
    section = html[html.index('<section id="bars">'):]
    section = section[:section.index("</section>")]
    assert "<script" not in section
    assert "decided: &lt;script&gt;window.__pwned=&#39;bar&#39;&lt;/script&gt; failed" in section


def test_the_cli_table_prints_the_same_rows(barred_run: RunResult) -> None:
    console = Console(width=400, record=True, color_system=None)
    console.print(bars_table(barred_run))
    lines = [line for line in console.export_text().splitlines() if line.startswith("│")]
    rows = bar_rows(barred_run)
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        value = f"{row.value} ({row.value_detail})" if row.value_detail else row.value
        assert cells == [row.candidate, row.expression, value, row.interval, row.status_label, row.decide]


def test_a_lower_is_better_measurement_is_written_in_its_units_in_every_cell(barred_run: RunResult) -> None:
    # Bits per byte is no share of items: the baseline's cell once read "105.9%" beside "1.1903".
    (row,) = [r for r in metric_rows(barred_run, candidate_means(barred_run)) if r.metric == "general_text"]
    base, forgetful = row.cells["base"].value, row.cells["forgetful"].value
    assert "%" not in base and "%" not in forgetful, (base, forgetful)
    assert len(base.split(".")[1]) == 4 and len(forgetful.split(".")[1]) == 4
