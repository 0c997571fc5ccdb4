"""Checkpoint sweeps: checkpoints become candidates, the rule picks one, bars and the summary see the pick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evalkit.bars.evaluate import BarSpec, evaluate_bar
from evalkit.checks import Score
from evalkit.errors import ConfigError
from evalkit.record.results import CandidateResult, ItemResult, RunResult, sweep_pick
from evalkit.suite.config import load_suite
from evalkit.sweeps.spec import SweepSpec
from evalkit.sweeps.stage import sweep_section
from tests.conftest import SuiteWriter

N_TASK, N_BENCH = 400, 2000


def member(name: str, task_rate: float, bench_rate: float, seed: int) -> CandidateResult:
    """A candidate with a pass/fail task metric and a benchmark of per-item correctness."""
    rng = np.random.default_rng(seed)
    task = rng.random(N_TASK) < task_rate
    items = [ItemResult(item_id=f"i{i}", fields={}, prompt="p", expected="e", prediction="x",
                        scores={"exact_match": Score(float(task[i]))}) for i in range(N_TASK)]
    bench = np.random.default_rng(1000).random(N_BENCH) < 0.5   # the base's answers...
    flips = np.random.default_rng(seed + 1).random(N_BENCH) < abs(0.5 - bench_rate) * 2
    answers = np.where(flips, bench_rate > 0.5, bench)             # ...moved toward bench_rate
    return CandidateResult(name=name, items=items,
                           item_values={"mmlu_mini": {f"b{i}": float(v) for i, v in enumerate(answers)}})


def sweep_run() -> tuple[RunResult, list[tuple[str, str, int | None]]]:
    """Task score rises with training; the benchmark holds until step 30, then collapses."""
    shape = {"base": (0.2, 0.5), "lora-step-10": (0.6, 0.5), "lora-step-20": (0.8, 0.5),
             "lora-step-30": (0.8, 0.5), "lora-step-40": (0.9, 0.3)}
    candidates = [member(name, task, bench, seed) for seed, (name, (task, bench)) in enumerate(shape.items())]
    run = RunResult(run_id="r1", suite_name="demo", suite_path="", baseline="base", candidates=candidates,
                    started_at="2026-12-01T10:00:00+00:00")
    members = [(name, f"/adapters/{name}", int(name.rsplit("-", 1)[1])) for name in shape if name != "base"]
    return run, members


def test_rule_picks_the_best_task_score_whose_benchmark_drop_passes() -> None:
    run, members = sweep_run()
    spec = SweepSpec(name="lora", model="m", adapters=["x"], benchmark="mmlu_mini", max_drop="10%")
    section = sweep_section(run, spec, members, "10%")
    bars = {p["candidate"]: p["bar"] for p in section["points"]}
    assert bars["lora-step-40"] == "failed"          # best task score, but it forgot
    assert bars["lora-step-20"] == "passed"
    # step 20 and 30 tie on the task score (same rate, different seeds: compare exactly)
    tasks = {p["candidate"]: p["task"] for p in section["points"]}
    eligible = [n for n in tasks if bars[n] == "passed"]
    assert section["pick"] == max(eligible, key=lambda n: tasks[n])
    assert section["pick"] != "lora-step-40" and "passes max_drop 10%" in section["reason"]
    assert [p["step"] for p in section["points"]] == [10, 20, 30, 40]
    assert section["baseline_benchmark"] == pytest.approx(0.5, abs=0.03)


def test_without_a_benchmark_the_best_task_score_wins_and_ties_go_to_the_earlier_step() -> None:
    run, members = sweep_run()
    run.candidates[3] = CandidateResult("lora-step-30", items=run.candidates[2].items)  # ties step 20
    spec = SweepSpec(name="lora", model="m", adapters=["x"])
    section = sweep_section(run, spec, members, "3%")
    assert section["pick"] == "lora-step-40"
    without_last = sweep_section(run, spec, members[:3], "3%")
    assert without_last["pick"] == "lora-step-20"


def test_no_pick_when_every_checkpoint_forgets_and_bars_on_the_sweep_say_so() -> None:
    run, members = sweep_run()
    spec = SweepSpec(name="lora", model="m", adapters=["x"], benchmark="mmlu_mini")
    run.sections["sweep"] = sweep_section(run, spec, members[3:], "1%")
    assert run.sections["sweep"]["pick"] is None
    result = evaluate_bar(BarSpec.of("lora", "exact_match >= 0.5"), run)
    assert result.status == "failed" and "picked no checkpoint" in result.message


def test_bars_on_the_sweep_name_apply_to_the_pick() -> None:
    run, members = sweep_run()
    spec = SweepSpec(name="lora", model="m", adapters=["x"], benchmark="mmlu_mini")
    run.sections["sweep"] = sweep_section(run, spec, members, "10%")
    assert sweep_pick(run.sections, "lora") == (True, run.sections["sweep"]["pick"], run.sections["sweep"]["reason"])
    result = evaluate_bar(BarSpec.of("lora", "exact_match >= 0.7"), run)
    assert result.status == "passed" and result.bar.candidate == run.sections["sweep"]["pick"]


def make_adapter(base_dir: Path, out: Path, seed: int) -> Path:
    """A random (non-zero) LoRA adapter on the tiny model, saved with peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def test_checkpoints_folder_expands_into_candidates(make_suite: SuiteWriter, tiny_model_dir: Path,
                                                     tmp_path: Path) -> None:
    root = tmp_path / "adapters" / "run"
    for step in (20, 5, 10):
        make_adapter(tiny_model_dir, root / f"checkpoint-{step}", seed=step)
    (root / "checkpoint-99").mkdir()          # no adapter inside: not a checkpoint
    (root / "runs").mkdir()
    suite = load_suite(make_suite(sweep={"name": "lora", "model": str(tiny_model_dir),
                                         "checkpoints": "../adapters/run"},
                                  bars=[{"lora": "exact_match >= 0.0"}]))
    assert [c.name for c in suite.candidates] == ["base", "lora-step-5", "lora-step-10", "lora-step-20"]
    assert suite.candidate("lora-step-10").adapter == str(root / "checkpoint-10")
    with pytest.raises(ConfigError, match="no checkpoint-N adapter folders"):
        load_suite(make_suite(sweep={"name": "lora", "model": str(tiny_model_dir), "checkpoints": "../nowhere"}))
    with pytest.raises(ConfigError, match="exactly one of"):
        load_suite(make_suite(sweep={"name": "lora", "model": str(tiny_model_dir)}))
