"""The pure parts of benchmark sharding: how questions are cut, and what merging refuses."""

from __future__ import annotations

import pytest

from evalkit.benchmarks.evaluate import BenchmarkOutcome, BenchmarkTask
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.benchmarks.stage import merge_outcomes, split_ranges
from evalkit.errors import BenchmarkError


def test_ranges_are_consecutive_balanced_and_never_empty() -> None:
    assert [len(r) for r in split_ranges(9, 4)] == [3, 2, 2, 2]
    assert [list(r) for r in split_ranges(2, 4)] == [[0], [1]], "no more shards than questions"
    ranges = split_ranges(570, 32)
    assert [i for r in ranges for i in r] == list(range(570)), "every question once, in order"


def task() -> BenchmarkTask:
    spec = BenchmarkSpec(task="evalkit_mmlu_mini", subjects=["anatomy"], limit_per_subject=2)
    return BenchmarkTask(spec=spec, task_name="t", include_path=None, include_defaults=False, metric="acc",
                         num_fewshot=0, formulation="letter", fewshot_source=None)


def test_merging_lays_items_out_in_document_order_and_refuses_a_missing_question() -> None:
    shards = [[{"id": "anatomy/1", "subject": "anatomy"}], [{"id": "anatomy/0", "subject": "anatomy"}]]
    outcomes = [BenchmarkOutcome(1.0, 0.0, "acc", {"anatomy/1": 1.0}),
                BenchmarkOutcome(0.0, 0.0, "acc", {"anatomy/0": 0.0})]
    merged = merge_outcomes(task(), shards, outcomes, 1.0)
    assert list(merged.items) == ["anatomy/1", "anatomy/0"] and merged.acc == 0.5
    assert merged.subjects["anatomy"].n == 2 and merged.stderr == pytest.approx(0.5)
    single = merge_outcomes(task(), shards[:1], outcomes[:1], 1.0)
    assert single.stderr == 0.0, "one item: no stderr, as locally"
    with pytest.raises(BenchmarkError, match="without question anatomy/0"):
        merge_outcomes(task(), shards, [outcomes[0], outcomes[0]], 1.0)
