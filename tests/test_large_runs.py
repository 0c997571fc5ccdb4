"""Large runs: summary.json holds aggregates only (its per-item maps stay in memory and the
store), and the bookkeeping that pairs generations with items is indexed once.

The timing targets (1M items within 12x of 100k) are measured by
benchmarks/bench_items_scaling.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from evalkit.api import run_suite
from evalkit.checks.sampling import expand_samples
from evalkit.record.results import FLIP_IDS_KEPT, comparison_section, summary_sections
from evalkit.record.run_dir import load_run_dir, write_run
from evalkit.store import RunStore
from evalkit.suite.config import GenerationConfig
from evalkit.testing.tiny_model import synthetic_run
from tests.test_write_order import write_suite


def test_summary_json_leaves_per_item_maps_to_the_store_and_reads_back(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    config = yaml.safe_load(suite.read_text())
    config["slices"] = ["output.category"]
    suite.write_text(yaml.safe_dump(config, sort_keys=False))
    store = tmp_path / "store.db"
    run = run_suite(suite, store=store)
    item_ids = {item.item_id for item in run.candidate("base").items}
    # In memory (for the bars and the report) the per-item maps are whole ...
    assert set(run.sections["slices"]["labels"]["category"]) == item_ids
    assert set(run.sections["usage"]["base"]["per_item"]) == item_ids
    # ... summary.json holds the aggregates only ...
    assert run.run_dir is not None
    written = json.loads((run.run_dir / "summary.json").read_text())
    assert "labels" not in written["sections"]["slices"] and written["sections"]["slices"]["candidates"]
    assert "per_item" not in written["sections"]["usage"]["base"]
    assert written["sections"]["usage"]["base"]["measured_items"] == len(item_ids)
    assert written["sections"] == json.loads(json.dumps(summary_sections(run.sections)))
    # ... the store keeps them, and the directory reads back without them.
    with RunStore(store) as run_store:
        stored = run_store.load_run(run.run_id)
        assert stored.sections["slices"]["labels"] == run.sections["slices"]["labels"]
        assert "labels" not in run_store.run_summaries("dry")[-1]["sections"]["slices"]
    again = load_run_dir(run.run_dir)
    assert again.summary()["sections"] == written["sections"]
    assert [len(c.items) for c in again.candidates] == [len(c.items) for c in run.candidates]


def test_samples_are_grouped_by_item_in_sample_order() -> None:
    settings = GenerationConfig(samples=3, temperature=0.7, seed=1)
    sampled = expand_samples(settings, ["a", "b"], ["ka", "kb"], [[{"role": "user", "content": "x"}]] * 2)
    assert [sampled.of_item(0), sampled.of_item(1)] == [[0, 1, 2], [3, 4, 5]]
    assert sampled.of_item(2) == []
    greedy = expand_samples(GenerationConfig(), ["a", "b"], ["ka", "kb"], [[], []])
    assert [greedy.of_item(0), greedy.of_item(1)] == [[0], [1]]


def test_summary_keeps_the_first_flipped_ids_and_their_totals(tmp_path: Path) -> None:
    run = synthetic_run(400, candidates=("base", "lora"), judged_items=0)
    flips = {metric: (len(mc["pass_to_fail"]), len(mc["fail_to_pass"]))
             for metric, mc in run.sections["comparison"]["candidates"]["lora"]["metrics"].items()}
    many = [metric for metric, (lost, gained) in flips.items() if max(lost, gained) > FLIP_IDS_KEPT]
    assert many  # the planted run flips more items than a summary lists
    directory = write_run(run, tmp_path)
    written = json.loads((directory / "summary.json").read_text())["sections"]["comparison"]
    for metric, (lost, gained) in flips.items():
        entry = written["candidates"]["lora"]["metrics"][metric]
        assert len(entry["pass_to_fail"]) == min(lost, FLIP_IDS_KEPT)
        for key, count in (("pass_to_fail", lost), ("fail_to_pass", gained)):
            total = entry.get(f"{key}_total")
            assert (len(entry[key]) if total is None else total) == count
    again = load_run_dir(directory)
    assert again.summary()["sections"] == json.loads((directory / "summary.json").read_text())["sections"]
    compared = comparison_section(again.sections)
    assert compared is not None
    counted = {metric: (mc.n_pass_to_fail, mc.n_fail_to_pass) for metric, mc in compared.candidates["lora"].metrics.items()}
    assert counted == flips
    frame = compared.to_pandas()
    assert frame.loc[("lora", many[0]), "n_pass_to_fail"] == flips[many[0]][0]
