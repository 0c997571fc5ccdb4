"""The merge agreement, sweep and slices sections against their models, and the report reading them typed."""

from __future__ import annotations

import pytest

from evalkit.checks import Score
from evalkit.comparison.result import ThresholdPolicy
from evalkit.errors import DataError
from evalkit.parity.checks import agreement, describe
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.record.run_facts import CandidateSlices, MergeAgreementSection, SliceRow, SlicesSection, SweepSection
from evalkit.record.sections import parse_section
from evalkit.report.failures import slice_tables, sweep_view
from evalkit.report.render import merge_agreement_lines
from evalkit.slices.compare import compare_slices, slice_regressions, slices_section
from evalkit.slices.spec import SliceSpec
from evalkit.sweeps.spec import SweepSpec
from evalkit.sweeps.stage import sweep_section


def _candidate(name: str, predictions: list[str], scores: list[float] | None = None,
               categories: list[str] | None = None) -> CandidateResult:
    items = [ItemResult(item_id=f"i{n}", fields={"output": {"category": (categories or ["a"] * 99)[n]}},
                        prompt="p", expected="e", prediction=text,
                        scores={"exact_match": Score(scores[n] if scores else 1.0)})
             for n, text in enumerate(predictions)]
    return CandidateResult(name=name, items=items)


def _run(*candidates: CandidateResult) -> RunResult:
    return RunResult(run_id="r1", suite_name="s", suite_path="", baseline=candidates[0].name,
                     candidates=list(candidates), started_at="2026-12-01T10:00:00+00:00")


def test_compare_slices_builds_the_sections_records_themselves() -> None:
    base = _candidate("base", ["a"] * 4, [1.0] * 4, ["x", "x", "y", "y"])
    other = _candidate("lora", ["a"] * 4, [1.0, 0.0, 1.0, 1.0], ["x", "x", "y", "y"])
    compared = compare_slices(base, other, [SliceSpec.model_validate("output.category")], ThresholdPolicy())
    assert isinstance(compared, CandidateSlices) and all(isinstance(row, SliceRow) for row in compared.rows)
    assert [row.sliced_metric for row in compared.rows] == ["exact_match[category=x]", "exact_match[category=y]"]
    assert compared.regressions == [row for row in compared.rows if row.verdict == "regressed"]


def test_merge_agreement_validates_reads_back_and_names_a_damaged_field() -> None:
    entry = agreement(_candidate("merged", ["a", "b", "c"]), _candidate("lora", ["a", "z", "c"]))
    assert list(entry) == ["source", "n", "agreeing", "agreement_rate", "differing"]
    run = _run(_candidate("lora", ["a"]))
    run.sections["merge_agreement"] = {"merged": entry}
    parsed: MergeAgreementSection = parse_section(MergeAgreementSection, run.sections["merge_agreement"], "m")
    assert parsed["merged"].differing[0].model_dump() == {"item_id": "i1", "merged": "b", "source": "z"}
    assert describe("merged", parsed["merged"]).endswith("on 2 of 3 items (66.7%, greedy)")
    assert merge_agreement_lines(run) == [(describe("merged", parsed["merged"]), False)]
    run.sections["merge_agreement"]["merged"]["agreeing"] = "most"
    with pytest.raises(DataError, match=r"run r1: sections.merge_agreement: field 'merged.agreeing'"):
        merge_agreement_lines(run)


def test_an_older_merge_agreement_entry_without_differing_items_reads() -> None:
    older = {"merged": {"source": "lora", "n": 0, "agreeing": 0, "agreement_rate": None}}
    parsed = parse_section(MergeAgreementSection, older, "m")["merged"]
    assert parsed.differing == [] and describe("merged", parsed) == "merged and lora answered no item in common"


def _sweep_run() -> tuple[RunResult, list[tuple[str, str, int | None]]]:
    base = _candidate("base", ["x"] * 4, [0.0, 0.0, 1.0, 0.0])
    steps = [_candidate(f"lora-step-{step}", ["x"] * 4, rates)
             for step, rates in ((10, [1.0, 0.0, 1.0, 0.0]), (20, [1.0, 1.0, 1.0, 0.0]))]
    return _run(base, *steps), [(c.name, f"/adapters/{c.name}", int(c.name.rsplit("-", 1)[1])) for c in steps]


def test_the_sweep_section_validates_and_the_report_reads_it() -> None:
    run, members = _sweep_run()
    spec = SweepSpec(name="lora", model="m", adapters=["x"])
    run.sections["sweep"] = sweep_section(run, spec, members, "3%")
    parsed: SweepSection = parse_section(SweepSection, run.sections["sweep"], "sweep")
    assert parsed.pick == "lora-step-20" and [p.step for p in parsed.points] == [10, 20]
    assert parsed.points[0].bar is None and parsed.baseline_task == 0.25 and parsed.benchmark is None
    assert parsed.model_dump(mode="json") == run.sections["sweep"]
    view = sweep_view(run)
    assert view is not None and [row["picked"] for row in view.rows] == ["", "yes"]
    run.sections["sweep"]["points"][1]["step"] = "twenty"
    with pytest.raises(DataError, match=r"sections.sweep: field 'points.1.step'"):
        sweep_view(run)


def test_an_older_sweep_point_without_its_bar_reads() -> None:
    run, members = _sweep_run()
    stored = sweep_section(run, SweepSpec(name="lora", model="m", adapters=["x"]), members, "3%")
    for point in stored["points"]:
        del point["bar"], point["bar_message"]
    assert [p.bar_message for p in parse_section(SweepSection, stored, "sweep").points] == ["", ""]


def _sliced_run() -> RunResult:
    categories = ["billing"] * 30 + ["shipping"] * 30
    base = _candidate("base", ["x"] * 60, [1.0] * 60, categories)
    lora = _candidate("lora", ["x"] * 60, [0.0] * 25 + [1.0] * 35, categories)  # billing collapses
    return _run(base, lora)


def test_the_slices_section_validates_and_its_readers_agree() -> None:
    run = _sliced_run()
    run.set_section("slices", slices_section(run, [SliceSpec.model_validate("output.category")], ThresholdPolicy()))
    parsed: SlicesSection = parse_section(SlicesSection, run.sections["slices"], "slices")
    assert parsed.model_dump(mode="json") == run.sections["slices"]
    rows = {(row.value, row.comparison.metric): row for row in parsed.candidates["lora"].rows}
    assert rows[("billing", "exact_match")].verdict == "regressed"
    assert rows[("shipping", "exact_match")].verdict != "regressed"
    assert parsed.labels["category"]["i0"] == "billing" and parsed.candidates["lora"].family_size == 2
    assert len(slice_regressions(run)) == 1 and "exact_match[category=billing]" in slice_regressions(run)[0]
    assert slice_tables(run)[0].flagged == ["exact_match[category=billing]"]


def test_a_damaged_slice_row_names_the_field_and_old_sections_without_labels_read() -> None:
    run = _sliced_run()
    stored = slices_section(run, [SliceSpec.model_validate("output.category")], ThresholdPolicy()).model_dump(mode="json")
    stored["candidates"]["lora"]["rows"][0]["verdict"] = "worse"
    run.sections["slices"] = stored
    with pytest.raises(DataError, match=r"run r1: sections.slices: field 'candidates.lora.rows.0.verdict'"):
        slice_regressions(run)
    older = {"alpha": 0.05, "candidates": {}}
    assert parse_section(SlicesSection, older, "slices").labels == {}
    # A row written before the comparison was nested (its fields beside the slice's) reads nested.
    flat = {"slice": "category", "value": "billing", "metric": "exact_match", "kind": "binary", "n_items": 40,
            "baseline_value": 0.9, "candidate_value": 0.6, "delta": -0.3, "ci_low": -0.45, "ci_high": -0.15,
            "p_value": 0.001, "p_adjusted": 0.002, "test": "mcnemar", "threshold": "3%", "mde": 0.1,
            "verdict": "regressed"}
    (row,) = parse_section(SlicesSection, {"alpha": 0.05, "candidates": {"lora": {
        "baseline": "base", "family_size": 1, "rows": [flat]}}}, "slices").candidates["lora"].rows
    assert (row.slice, row.value, row.p_adjusted, row.mde, row.verdict) == ("category", "billing", 0.002, 0.1, "regressed")
    assert (row.comparison.metric, row.comparison.n_items, row.comparison.delta) == ("exact_match", 40, -0.3)
    assert row.comparison.relative_delta is None and row.sliced_metric == "exact_match[category=billing]"
