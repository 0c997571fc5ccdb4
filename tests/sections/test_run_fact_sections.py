"""The run's smaller sections (usage, sampling, controls, metric kinds, executor, fleet, limit) against their models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.checks import Score
from evalkit.checks.sampling import is_rate_metric, record_sampling, score_samples
from evalkit.errors import DataError
from evalkit.executors.ray_executor import RayExecutor
from evalkit.models.fleet import EndpointFleet
from evalkit.models.openai_server import record_fleets
from evalkit.progress import SilentProgress
from evalkit.record.results import ItemResult, RunResult, read_section
from evalkit.record.run_facts import (
    ApiUsage,
    CandidateUsage,
    ControlsSection,
    ExecutorSection,
    FleetSection,
    LimitSection,
    MetricDeclared,
    MetricKindsSection,
    SamplingSection,
    UsageSection,
)
from evalkit.record.sections import parse_section
from evalkit.report.failures import control_views, sampling_view
from evalkit.suite.config import GenerationConfig, RayExecutorConfig
from evalkit.usage.stage import GenerationUsage, PriceSpec, RequestTally, UsageMeter
from tests.models.test_mock import write_mock_suite


@pytest.fixture(scope="module")
def mock_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A whole run on the mock backend: a baseline, a constrained control, two samples per item, --limit 3."""
    root = tmp_path_factory.mktemp("mock_run")
    path = write_mock_suite(root, [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
        {"name": "ctl", "model": "smollm2-135m-instruct", "backend": "mock", "constrain": "json_schema",
         "options": {"echo": "prompt"}},
    ], generation={"samples": 2, "temperature": 0.7, "seed": 3})
    return run_suite(path, store=root / "runs.db", write=False, limit=3)


def test_a_real_run_writes_sections_its_models_describe(mock_run: RunResult) -> None:
    sections = mock_run.sections
    usage: UsageSection = parse_section(UsageSection, sections["usage"], "usage")
    assert set(usage) == {"base", "ctl"} and usage["base"].items == 3 and usage["base"].measured_items == 3
    assert set(usage["base"].per_item) == {item.item_id for item in mock_run.candidate("base").items}
    sampling: SamplingSection = parse_section(SamplingSection, sections["sampling"], "sampling")
    assert (sampling.samples, sampling.temperature, sampling.seed, sampling.pass_at) == (2, 0.7, 3, [2])
    assert "exact_match.pass@2" in sampling.metrics and set(sampling.flaky_total) == {"base", "ctl"}
    controls: ControlsSection = parse_section(ControlsSection, sections["controls"], "controls")
    assert {name: c.constrain for name, c in controls.items()} == {"ctl": "json_schema"}
    kinds: MetricKindsSection = parse_section(MetricKindsSection, sections["metric_kinds"], "metric_kinds")
    assert kinds["exact_match"] == MetricDeclared(kind="binary", higher_is_better=True)
    assert kinds["field_accuracy"].kind == "continuous"
    limit: LimitSection = parse_section(LimitSection, sections["limit"], "limit")
    assert (limit.items, limit.mmlu_per_subject, limit.lm_eval_documents) == (3, None, None)


def test_the_stored_json_keeps_exactly_the_models_keys(mock_run: RunResult) -> None:
    """Building through the models changed no key: each stored dict is its model's dump."""
    for name, shape in (("usage", UsageSection), ("sampling", SamplingSection), ("controls", ControlsSection),
                        ("metric_kinds", MetricKindsSection), ("limit", LimitSection)):
        stored = mock_run.sections[name]
        parsed = parse_section(shape, stored, name)
        dumped = ({key: value.model_dump(mode="json") for key, value in parsed.items()} if isinstance(parsed, dict)
                  else parsed.model_dump(mode="json"))
        assert dumped == stored, name
    assert list(mock_run.sections["usage"]["base"]) == list(CandidateUsage.model_fields)


def test_the_report_reads_controls_and_sampling_from_a_real_run(mock_run: RunResult) -> None:
    assert [view.control for view in control_views(mock_run)] == ["ctl"]
    view = sampling_view(mock_run)
    assert view is not None and view.settings.startswith("2 samples per item at temperature 0.7, seed 3")
    assert is_rate_metric("exact_match", mock_run.section("sampling"))


def test_usage_summaries_with_prices_and_tokens_validate() -> None:
    meter = UsageMeter(per_item={"a": GenerationUsage(10, 4, 0.5, 0.1), "b": GenerationUsage(12, 6, 0.7)},
                       seconds=1.2)
    entry = parse_section(CandidateUsage, meter.summary(3, ("*", PriceSpec(input_per_million=1.0))), "usage.x")
    assert (entry.prompt_tokens, entry.completion_tokens, entry.price, entry.currency) == (22, 10, "*", "USD")
    assert entry.cost == pytest.approx(22 / 1e6) and entry.per_item["b"].first_token_seconds is None
    tally = RequestTally()
    tally.add(None, 0.3)
    judge = parse_section(ApiUsage, tally.summary(("judge:x", PriceSpec(per_hour=3.6)), 10.0), "judges.x.usage")
    assert (judge.requests, judge.unreported, judge.prompt_tokens) == (1, 1, None)
    assert judge.cost == pytest.approx(0.01) and judge.cost_per_1k_requests == pytest.approx(10.0)


def test_a_damaged_usage_entry_names_the_field() -> None:
    meter = UsageMeter(per_item={"a": GenerationUsage(10, 4, 0.5)}, seconds=0.5)
    stored = {"lora": meter.summary(1, None).model_dump(mode="json")}
    stored["lora"]["per_item"]["a"]["seconds"] = "slow"
    with pytest.raises(DataError, match=r"summary.json sections.usage: field 'lora.per_item.a.seconds'"):
        parse_section(UsageSection, stored, "summary.json sections.usage")


def test_an_older_usage_entry_without_first_token_figures_still_reads() -> None:
    older = {"base": {"items": 4, "measured_items": 0, "seconds": 0.0}}
    entry = parse_section(UsageSection, older, "usage")["base"]
    assert entry.ttft_p50 is None and entry.per_item == {} and entry.cost is None


def test_sampling_records_two_candidates_and_an_empty_section_reads_as_one_sample() -> None:
    def exact(prediction: str, reference: str) -> dict[str, Score]:
        return {"exact_match": Score(float(prediction == reference))}

    settings = GenerationConfig(samples=2, temperature=0.7, seed=1)
    run = RunResult(run_id="r", suite_name="s", suite_path="", baseline="base", candidates=[], started_at="")
    for name, outputs in (("base", [["yes", "yes"], ["yes", "no"]]), ("lora", [["no", "no"], ["yes", "yes"]])):
        items = [ItemResult(item_id=str(n), expected="yes", prediction="") for n in range(2)]
        record_sampling(run, name, settings, score_samples([exact], items, outputs, settings))
    section = run.sections["sampling"]
    parsed = parse_section(SamplingSection, section, "sampling")
    assert parsed.flaky_total == {"base": 1, "lora": 0} and [f.item_id for f in parsed.flaky["base"]] == ["1"]
    assert parsed.flaky["base"][0].rates == {"exact_match": 0.5} and parsed.flaky["lora"] == []
    assert list(section) == list(SamplingSection.model_fields)
    assert parse_section(SamplingSection, {}, "sampling").samples == 1
    assert not is_rate_metric("exact_match", read_section({"sampling": {}}, "sampling"))


def test_damaged_sampling_and_controls_name_the_field() -> None:
    with pytest.raises(DataError, match=r"field 'flaky_total.base'"):
        parse_section(SamplingSection, {"samples": 2, "flaky_total": {"base": "many"}}, "sampling")
    with pytest.raises(DataError, match=r"field 'ctl.constrain'"):
        parse_section(ControlsSection, {"ctl": {"constrain": "regex"}}, "controls")
    with pytest.raises(DataError, match=r"field 'f1.kind'"):
        parse_section(MetricKindsSection, {"f1": {"kind": "fuzzy"}}, "metric_kinds")


def test_a_declaration_without_a_direction_reads_as_higher_is_better() -> None:
    assert parse_section(MetricDeclared, {"kind": "ordinal"}, "metric_kinds.x").higher_is_better is True
    assert parse_section(MetricDeclared, {"kind": "binary", "higher_is_better": False}, "m").higher_is_better is False


def test_the_executor_summary_validates_with_and_without_benchmark_shards() -> None:
    executor = RayExecutor(RayExecutorConfig(address="local", num_workers=2))  # joins no cluster until used
    executor.figures.units, executor.figures.chunks, executor.figures.retried_units = 5, 9, 1
    figures = executor.summary()
    assert list(figures) == [name for name in ExecutorSection.model_fields if name != "benchmark_shards"]
    parsed = parse_section(ExecutorSection, figures, "executor")
    assert (parsed.kind, parsed.workers, parsed.retried_units, parsed.benchmark_shards) == ("ray", 2, 1, None)
    assert parse_section(ExecutorSection, {**figures, "benchmark_shards": 4}, "executor").benchmark_shards == 4
    with pytest.raises(DataError, match=r"field 'units'"):
        parse_section(ExecutorSection, {**figures, "units": "five"}, "executor")


class _FleetBackend:
    """Stands in for the openai_server backend only as the holder of real fleets (no request is sent)."""

    def __init__(self, fleet: EndpointFleet) -> None:
        self.fleet = fleet

    def fleet_reports(self) -> dict[str, list[dict[str, Any]]]:
        return {self.fleet.model: self.fleet.report()}


def test_the_fleet_stage_stores_validated_endpoint_reports(tmp_path: Path) -> None:
    fleet = EndpointFleet(["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"], "tiny", ["k", "k"])
    fleet.endpoints[1].failed, fleet.endpoints[1].ejected, fleet.endpoints[1].last_error = 3, True, "refused"
    run = RunResult(run_id="r", suite_name="s", suite_path="", baseline="base", candidates=[], started_at="")

    class _Inputs:
        executor = None

    record_fleets(_Inputs(), run, {"openai_server": _FleetBackend(fleet)}, SilentProgress())  # type: ignore[arg-type]
    fleet.close()
    assert run.sections["fleet"]["tiny"] == fleet.report()
    parsed: FleetSection = parse_section(FleetSection, run.sections["fleet"], "fleet")
    assert [(e.url.endswith(":10/v1"), e.ejected) for e in parsed["tiny"]] == [(False, False), (True, True)]
    assert len(run.warnings) == 1 and "3 request(s) failed" in run.warnings[0]
    with pytest.raises(DataError, match=r"field 'tiny.0.ejected'"):
        parse_section(FleetSection, {"tiny": [{"url": "u", "ejected": "maybe"}]}, "fleet")
