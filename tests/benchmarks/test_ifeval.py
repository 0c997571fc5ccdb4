"""evalkit_ifeval: the vendored prompts, lm-eval's checkers offline, and the task end to end on the tiny model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from test_benchmark_stage import make_adapter  # the same directory: pytest puts it on sys.path

from evalkit.benchmarks.evaluate import evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import (
    IFEVAL_LM_EVAL_METRICS,
    PROMPTS_FILE,
    PUNKT_FILES,
    IfevalPrompt,
    ifeval_checkers,
    load_prompts,
    prepare_ifeval_task,
    process_results,
    punkt_tab_files,
)
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.errors import BenchmarkError, ConfigError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend, render_chat
from evalkit.models.sources import resolve_model
from evalkit.runner import execute_suite
from evalkit.suite.config import load_suite

README = PROMPTS_FILE.parent / "README.md"


def _doc(ids: list[str], kwargs: list[dict[str, Any]], prompt: str = "Describe the moon.") -> dict[str, Any]:
    return {"key": 1, "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs}


# (instruction id, kwargs, response, followed strictly, followed loosely): written by hand.
HAND_MADE = [
    ("punctuation:no_comma", {}, "No commas here at all.", True, True),
    ("punctuation:no_comma", {}, "Well, there is one.", False, False),
    ("change_case:english_lowercase", {}, "the sky looks blue because air scatters blue light the most.", True, True),
    ("change_case:english_lowercase", {}, "The sky looks blue because air scatters blue light the most.", False, False),
    # A first line of chatter fails strictly; the loose score drops the first line.
    ("change_case:english_lowercase", {}, "Here is my answer:\nthe sky looks blue because air scatters blue light.",
     False, True),
    ("detectable_format:title", {}, "<<Blue Skies>>\nAir scatters blue light.", True, True),
    ("detectable_format:title", {}, "Blue Skies\nAir scatters blue light.", False, False),
    ("detectable_format:json_format", {}, '```json\n{"color": "blue"}\n```', True, True),
    ("detectable_format:json_format", {}, "color: blue", False, False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* one\n* two\n* three", True, True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* one\n* two", False, False),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "It is round. Any other questions?", True, True),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Any other questions? It is round.", False, False),
    ("startend:quotation", {}, '"The moon is round."', True, True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "It is round.\nP.S. Look up tonight.", True, True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Meet [name] at [place].", True, True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Meet [name] here.", False, False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe the moon."}, "Describe the moon. It is round.",
     True, True),
    ("combination:two_responses", {}, "It is round.******It is grey.", True, True),
    ("keywords:existence", {"keywords": ["craters", "night"]}, "Craters show at night.", True, True),
    ("keywords:forbidden_words", {"forbidden_words": ["very", "really"]}, "It is very round.", False, False),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "It is round.", True, True),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "The MOON is VERY round.", True, True),
    # punkt knows "Dr." is an abbreviation: two sentences, where a naive split on "." sees three.
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "Dr. Smith looked at the moon. He smiled.", True, True),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "Dr. Smith looked at the moon. He smiled. Then he slept.", False, False),
]


@pytest.mark.parametrize(("instruction", "kwargs", "response", "strict", "loose"), HAND_MADE)
def test_scoring_is_lm_evals_checkers_on_hand_made_responses(
    instruction: str, kwargs: dict[str, Any], response: str, strict: bool, loose: bool
) -> None:
    scored = process_results(_doc([instruction], [kwargs]), [response])
    assert (scored["prompt_level_strict_acc"], scored["prompt_level_loose_acc"]) == (strict, loose)
    assert scored["inst_level_strict_acc"] == [strict] and scored["inst_level_loose_acc"] == [loose]
    # The same verdict as lm-eval's own checker class, called directly.
    registry = ifeval_checkers().instructions_registry.INSTRUCTION_DICT
    checker = registry[instruction](instruction)
    checker.build_description(**kwargs)
    assert checker.check_following(response) == strict


def test_two_instructions_score_per_instruction_and_per_prompt() -> None:
    doc = _doc(["punctuation:no_comma", "detectable_format:title"], [{}, {}])
    scored = process_results(doc, ["<<Moon>>\nIt is round, and grey."])
    assert scored["inst_level_strict_acc"] == [False, True]
    assert scored["prompt_level_strict_acc"] is False
    # The kwargs lm-eval's JSON loader fills with None for other instructions' keys are ignored.
    padded = _doc(["detectable_format:title"], [{"num_bullets": None, "keywords": None}])
    assert process_results(padded, ["<<Moon>>\nround"])["prompt_level_strict_acc"] is True


def test_a_checker_crash_scores_not_followed_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    doc = _doc(["detectable_format:number_bullet_lists"], [{"num_bullets": "three"}])  # a bad kwarg: raises inside
    scored = process_results(doc, ["* one"])
    assert scored == {"prompt_level_strict_acc": False, "inst_level_strict_acc": [False],
                      "prompt_level_loose_acc": False, "inst_level_loose_acc": [False]}
    assert "scored as not followed" in caplog.text


def test_vendored_prompts_are_valid_ifeval_rows_and_the_readme_counts_them() -> None:
    prompts = load_prompts()
    assert len(prompts) >= 200
    assert len({p.key for p in prompts}) == len(prompts)
    assert len({p.prompt for p in prompts}) == len(prompts)
    registry = ifeval_checkers().instructions_registry.INSTRUCTION_DICT
    for prompt in prompts:
        for instruction, kwargs in zip(prompt.instruction_id_list, prompt.kwargs, strict=True):
            checker = registry[instruction](instruction)
            checker.build_description(**kwargs)  # every kwarg is one its checker takes
            if "prompt_to_repeat" in kwargs:
                assert prompt.prompt.startswith(kwargs["prompt_to_repeat"])
    assert not any("customer" in p.prompt.lower() for p in prompts)
    counts = Counter(i for p in prompts for i in p.instruction_id_list)
    table = dict(re.findall(r"^\| `([a-z_:-]+)` \| (\d+) \|$", README.read_text(), flags=re.M))
    assert {k: int(v) for k, v in table.items()} == dict(counts)
    assert len(counts) >= 20


def test_a_damaged_prompts_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    good = IfevalPrompt(1, "Describe the moon.", ("punctuation:no_comma",), ({},)).row()
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "key": 2, "kwargs": []}) + "\n")
    with pytest.raises(BenchmarkError, match=r"prompts.jsonl:2: 'kwargs' must be a list of one object"):
        load_prompts(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "instruction_id_list": ["no:such"]}) + "\n")
    with pytest.raises(BenchmarkError, match=r"key 1 is used twice"):
        load_prompts(path)
    path.write_text(json.dumps({**good, "instruction_id_list": ["no:such"]}) + "\n")
    with pytest.raises(BenchmarkError, match=r"unknown ifeval instruction id no:such"):
        prepare_ifeval_task("x", path)


def test_punkt_data_is_the_packaged_english_model_and_nltk_loads_it() -> None:
    from nltk.tokenize import PunktTokenizer
    from punkt.data import english

    ifeval_checkers()
    assert set(punkt_tab_files()) == set(PUNKT_FILES)
    params = PunktTokenizer("english")._params
    assert params.abbrev_types == set(english.ABBREV_TYPES)
    assert params.sent_starters == set(english.SENT_STARTERS)
    assert params.collocations == set(english.COLLOCATIONS)
    assert dict(params.ortho_context) == dict(english.ORTHO_CONTEXT)


# Run in a fresh interpreter with an empty cache directory: every socket connection and
# every nltk.download call is refused and recorded, then the checkers load and score a
# sentence-count instruction (the one that needs punkt).
_OFFLINE_SCRIPT = """
import json, socket, sys
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(repr(address))
    raise OSError("network refused by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
import nltk
def no_download(*args, **kwargs):
    attempts.append("nltk.download" + repr(args))
    return False
nltk.download = no_download
from evalkit.benchmarks.probes import process_results
doc = {"key": 1, "prompt": "p", "instruction_id_list": ["length_constraints:number_sentences",
       "change_case:english_lowercase"], "kwargs": [{"num_sentences": 3, "relation": "less than"}, {}]}
scored = process_results(doc, ["dr. smith came home. he slept well."])
print(json.dumps({"attempts": attempts, "scored": scored}))
"""


def test_checkers_load_and_score_without_any_network_or_download(tmp_path: Path) -> None:
    env = {"EVALKIT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           "NLTK_DATA": str(tmp_path / "no-nltk-data")}
    done = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["scored"]["inst_level_strict_acc"] == [True, True]
    assert (tmp_path / "home" / "nltk_data").is_dir()


def test_spec_refuses_options_of_other_tasks() -> None:
    assert BenchmarkSpec(task="evalkit_ifeval", limit=5).is_ifeval
    for bad in ({"genres": ["essay"]}, {"subjects": ["anatomy"]}, {"num_fewshot": 2}, {"lm_eval_metric": "x"}):
        with pytest.raises(ValueError, match="not for 'evalkit_ifeval'"):
            BenchmarkSpec(task="evalkit_ifeval", **bad)
    with pytest.raises(ValueError, match="max_gen_toks: only for 'evalkit_ifeval', not for 'evalkit_mmlu_mini'"):
        BenchmarkSpec(task="evalkit_mmlu_mini", max_gen_toks=16)


class RecordingLM(EvalkitLM):
    """evalkit's lm-eval model, keeping what lm-eval asked it to generate from and what it answered."""

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.contexts = [request.args[0] for request in requests]
        self.outputs = super().generate_until(requests, disable_tqdm)
        return self.outputs


def _run(backend: HFBackend, variant: ModelVariant, limit: int) -> tuple[RecordingLM, Any]:
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_ifeval", limit=limit, max_gen_toks=16), Path("."))
    lm = RecordingLM(backend, variant, batch_size=4)
    return lm, evaluate_benchmark(task, lm)


def test_task_generates_through_the_chat_template_and_scores_each_prompt(tiny_model_dir: Path) -> None:
    backend = HFBackend(device=torch.device("cpu"))
    variant = ModelVariant(resolve_model(str(tiny_model_dir)), dtype="float32")
    lm, outcome = _run(backend, variant, limit=4)
    prompts = load_prompts()[:4]
    tokenizer = backend.load(variant).tokenizer
    # Each request is the prompt as one user turn in the model's chat template, assistant turn open.
    expected = {render_chat(tokenizer, [{"role": "user", "content": p.prompt}]) for p in prompts}
    assert set(lm.contexts) == expected
    assert all(context.startswith("<|im_start|>user\n") for context in lm.contexts)
    # Items are the prompts' keys; each value is lm-eval's strict prompt-level verdict on the response.
    assert set(outcome.items) == {str(p.key) for p in prompts}
    for prompt in prompts:
        context = render_chat(tokenizer, [{"role": "user", "content": prompt.prompt}])
        response = lm.outputs[lm.contexts.index(context)]
        verdict = process_results(prompt.row(), [response])["prompt_level_strict_acc"]
        assert outcome.items[str(prompt.key)] == float(verdict)
    assert outcome.metric == "prompt_level_strict_acc" and outcome.higher_is_better
    assert set(outcome.lm_eval_scores) == set(IFEVAL_LM_EVAL_METRICS)
    assert outcome.acc == pytest.approx(sum(outcome.items.values()) / 4)
    assert set(outcome.subjects) == {p.instruction_id_list[0] for p in prompts}


def test_an_adapter_candidate_generates_with_its_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    backend = HFBackend(device=torch.device("cpu"))
    model = resolve_model(str(tiny_model_dir))
    adapter = make_adapter(tiny_model_dir, tmp_path / "lora")
    base_lm, _ = _run(backend, ModelVariant(model, dtype="float32"), limit=3)
    lora_lm, _ = _run(backend, ModelVariant(model, adapter, "lora", dtype="float32"), limit=3)
    again_lm, _ = _run(backend, ModelVariant(model, dtype="float32"), limit=3)
    assert lora_lm.contexts == base_lm.contexts
    assert lora_lm.outputs != base_lm.outputs, "the adapter changes what the model writes"
    assert again_lm.outputs == base_lm.outputs, "switching the adapter off gives the base back"


def test_suite_compares_ifeval_paired_with_a_max_drop_bar(make_suite: Any, tiny_model_dir: Path,
                                                          tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dir, tmp_path / "lora")
    suite_file = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter)}],
        benchmarks=[{"task": "evalkit_ifeval", "limit": 3, "max_gen_toks": 16, "max_drop": "10%"}],
    )
    run = execute_suite(load_suite(suite_file))
    entry = run.sections["benchmarks"]["lora"]["evalkit_ifeval"]
    assert entry["metric"] == "prompt_level_strict_acc" and entry["n"] == 3
    assert set(entry["lm_eval_scores"]) == set(IFEVAL_LM_EVAL_METRICS)
    assert entry["vs_baseline"]["baseline"] == "base"
    assert run.sections["metric_kinds"]["evalkit_ifeval"] == {"kind": "binary", "higher_is_better": True}
    compared = run.sections["comparison"]["candidates"]["lora"]["metrics"]["evalkit_ifeval"]
    assert compared["n_items"] == 3 and compared["threshold"] == "10%"
    assert set(run.candidate("lora").item_values["evalkit_ifeval"]) == {str(p.key) for p in load_prompts()[:3]}


def test_suite_with_ifeval_options_of_another_task_is_a_config_error(make_suite: Any) -> None:
    suite_file = make_suite(benchmarks=[{"task": "evalkit_ifeval", "genres": ["essay"]}])
    with pytest.raises(ConfigError, match="not for 'evalkit_ifeval'"):
        load_suite(suite_file)
