"""Contamination: the n-gram measure (against lm-eval's own), the run stage, its cache, report and CLI."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.benchmarks.evaluate import benchmark_documents, question_prompt
from evalkit.benchmarks.mmlu_data import load_mmlu, select_items
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.contamination import ngrams as overlap
from evalkit.contamination.ngrams import ContaminationSection
from evalkit.contamination.stage import run_contamination
from evalkit.contamination.view import contamination_view
from evalkit.errors import DataError
from evalkit.progress import SilentProgress
from evalkit.record.results import CandidateResult, RunResult, check_sections
from evalkit.report.render import render_report
from evalkit.stages import load_inputs
from evalkit.suite.config import load_suite
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

ANATOMY = select_items(load_mmlu(), ["anatomy"], 2)
"""The two questions a suite's ``subjects: [anatomy], limit_per_subject: 2`` entry scores."""
BENCHMARK = {"task": "evalkit_mmlu_mini", "name": "mmlu_mini", "subjects": ["anatomy"], "limit_per_subject": 2}


@pytest.fixture(autouse=True)
def private_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches (contamination, benchmarks, converted MMLU) in its own directory, never the user's."""
    home = tmp_path / "evalkit-home"
    monkeypatch.setenv("EVALKIT_HOME", str(home))
    return home


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the comparisons actually computed (a cache hit computes none)."""
    calls: list[int] = []
    real = overlap.TrainingNgrams.overlap

    def counting(self: overlap.TrainingNgrams, items: Any, *args: Any, **kwargs: Any) -> overlap.OverlapResult:
        calls.append(len(items))
        return real(self, items, *args, **kwargs)

    monkeypatch.setattr(overlap.TrainingNgrams, "overlap", counting)
    return calls


# --- the measure ---------------------------------------------------------------------------------

def _lm_eval_contaminated(training: list[str], items: list[tuple[str, str]], n: int = 13) -> set[str]:
    """lm-eval's own test: its janitor's normalisation and word n-grams, any shared n-gram flags an item."""
    from lm_eval.decontamination.janitor import Janitor, word_ngrams

    janitor = Janitor(ngram_n=n)
    train_grams = {gram for text in training for gram in word_ngrams(janitor.normalize_string(text), n)}
    return {item_id for item_id, text in items
            if any(gram in train_grams for gram in word_ngrams(janitor.normalize_string(text), n))}


def test_items_flagged_are_the_ones_lm_evals_decontamination_flags() -> None:
    # ASCII prose whose punctuation follows a word and precedes a space: both normalisations agree there.
    rng = random.Random(7)
    vocabulary = [f"w{k}" for k in range(400)] + ["The", "of", "and", "a", "to", "in"]

    def sentence(words: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(words)) + "."

    items = [(f"q{k}", " ".join(sentence(rng.randint(8, 14)) for _ in range(3))) for k in range(200)]
    training = [" ".join(sentence(rng.randint(8, 14)) for _ in range(4)) for _ in range(300)]
    for k in range(0, 200, 9):  # plant a 13-word window of every ninth item, mid-sentence and re-cased
        words = items[k][1].split()
        start = rng.randint(0, len(words) - 13)
        training[k] += " Quote: " + " ".join(words[start:start + 13]).upper() + " unquote"
    for k in range(4, 200, 9):  # and only 12 words of others: not a 13-gram, must stay clean
        training[k] += " " + " ".join(items[k][1].split()[:12]) + " end"
    ours = overlap.find_overlap(training, items)
    theirs = _lm_eval_contaminated(training, items)
    assert len(theirs) >= 23  # every ninth item at least; chance 13-gram collisions are impossible here
    assert ours.contaminated == len(theirs) and ours.too_short == 0 and ours.items == 200
    assert {e.item_id for e in ours.examples} <= theirs and len(ours.examples) == overlap.EXAMPLES
    assert ours.fraction == pytest.approx(len(theirs) / 200)


def test_punctuation_is_a_word_break_where_lm_eval_glues_words() -> None:
    item = [("q1", "the mitochondria is the powerhouse of the cell and makes most of its energy supply")]
    # The same words, sentence-broken without a space: the janitor deletes '.' and glues "cell.And".
    training = ["The mitochondria is the powerhouse of the cell.And makes most of its energy supply"]
    assert overlap.find_overlap(training, item).contaminated == 1
    assert _lm_eval_contaminated(training, item) == set()


def test_short_items_are_tested_whole_and_the_shortest_are_not_called_clean() -> None:
    items = [("nine", "Which nerve supplies the deltoid muscle of the arm?"),
             ("nine-clean", "Which nerve supplies the biceps muscle of the arm?"),
             ("four", "What is anatomy?")]
    training = ["Quiz: which nerve supplies the deltoid muscle of the arm? The axillary nerve.",
                "what is anatomy"]
    result = overlap.find_overlap(training, items)
    assert (result.items, result.contaminated, result.too_short) == (3, 1, 1)
    assert result.examples == [overlap.OverlapExample("nine", "which nerve supplies the deltoid muscle of the arm")]
    assert overlap.describe(result) == "1 of 3 items (33.3%) share a 13-gram with the training data, 1 too short to test"
    # A shorter n makes the nine-word item an ordinary n-gram case.
    assert overlap.find_overlap(training, items, n=5, min_words=8).contaminated == 1


def test_training_fields_are_read_apart_so_no_ngram_spans_two_of_them(tmp_path: Path) -> None:
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    words = text.split()
    write_jsonl(tmp_path / "train.jsonl", [
        {"instruction": " ".join(words[:7]), "output": " ".join(words[7:])},
        {"messages": [{"role": "user", "content": "unrelated"}, {"role": "assistant", "content": "nothing"}]},
    ])
    texts = list(overlap.training_texts(tmp_path / "train.jsonl"))
    assert texts == [" ".join(words[:7]), " ".join(words[7:]), "user", "unrelated", "assistant", "nothing"]
    assert overlap.find_overlap(texts, [("q", text)]).contaminated == 0
    assert overlap.find_overlap([text], [("q", text)]).contaminated == 1


def test_a_malformed_training_file_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"input": "fine"}\n{"input": broken\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: not valid JSON"):
        list(overlap.training_texts(path))
    # A CSV training file (a suite's train_path may be one) is read as datasets are, cell by cell.
    (tmp_path / "train.csv").write_text("input,output\nthe box arrived empty,refund\n")
    assert list(overlap.training_texts(tmp_path / "train.csv")) == ["the box arrived empty", "refund"]


def test_mmlu_documents_are_the_letter_prompts_of_exactly_the_selected_questions() -> None:
    documents = benchmark_documents(BenchmarkSpec(**BENCHMARK), Path("."))
    assert documents == [(q.id, question_prompt(q, "letter")) for q in ANATOMY]
    assert len(benchmark_documents(BenchmarkSpec(task="evalkit_mmlu_mini_cloze"), Path(".")) or []) == 570
    assert benchmark_documents(BenchmarkSpec(task="some_lm_eval_task"), Path(".")) is None


def test_the_bundled_general_text_and_ifeval_items_are_listed_by_the_ids_their_results_use() -> None:
    from evalkit.benchmarks.probes import load_corpus, load_prompts, select_documents

    dialogue = benchmark_documents(BenchmarkSpec(task="evalkit_general_text", genres=["dialogue"], limit=3), Path("."))
    assert dialogue == [(d.id, d.text) for d in select_documents(load_corpus(), ["dialogue"])[:3]]
    assert all(item_id.startswith("dialogue/") for item_id, _ in dialogue)
    prompts = benchmark_documents(BenchmarkSpec(task="evalkit_ifeval"), Path("."))
    assert prompts == [(str(p.key), p.prompt) for p in load_prompts()] and len(prompts) >= 200
    # A prompt copied into training data is found like any benchmark item.
    found = overlap.find_overlap(["Training example: " + prompts[7][1].upper()], [prompts[7], prompts[8]])
    assert found.contaminated >= 1 and found.examples[0].item_id == prompts[7][0]


# --- the run stage -------------------------------------------------------------------------------

def _planted_training(path: Path, plant: bool) -> Path:
    """The classifier training rows, plus (when ``plant``) the first anatomy question copied in as an input."""
    rows = [dict(row, input=f"{row['input']} (order {n})") for n, row in enumerate(CLASSIFIER_ITEMS * 2)]
    if plant:
        rows.append(dict(CLASSIFIER_ITEMS[0], input=question_prompt(ANATOMY[0], "letter") + " B"))
    write_jsonl(path, rows)
    return path


def _data(root: Path) -> None:
    """The eval set, training data with the planted item and without it (written before the adapters record it)."""
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    _planted_training(root / "data" / "planted.jsonl", plant=True)
    _planted_training(root / "data" / "clean.jsonl", plant=False)


def _suite(root: Path, candidates: list[dict[str, Any]], **overrides: Any) -> Path:
    if not (root / "data" / "eval.jsonl").is_file():
        _data(root)
    suite = {"name": "contaminated", "dataset": {"path": "../data/eval.jsonl", "train_path": "../data/clean.jsonl"},
             "candidates": candidates, "checks": ["exact_match"], "benchmarks": [BENCHMARK], **overrides}
    (root / "suites").mkdir(exist_ok=True)
    path = root / "suites" / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _adapter(root: Path, name: str, manifest_data: Path | None = None) -> str:
    """An adapter directory (the stage reads only its manifest), optionally recording its training data."""
    from evalkit.files.home import file_sha256

    directory = root / "adapters" / name
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text("{}")
    if manifest_data is not None:
        manifest = {"kind": "adapter", "method": "sft", "base_source": "tiny", "base_fingerprint": "f", "base_path": "",
                    "data_path": str(manifest_data), "data_sha256": file_sha256(manifest_data),
                    "data_examples": 1, "config": {}, "config_fingerprint": "c", "prompt_hash": "p"}
        (directory / "evalkit-manifest.json").write_text(json.dumps(manifest))
    return f"../adapters/{name}"


def _train_config(root: Path, data: str, output_dir: str) -> str:
    config = {"method": "sft", "model": "tiny", "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
              "data": data, "output_dir": output_dir}
    (root / "train").mkdir(exist_ok=True)
    (root / "train" / "lora.yaml").write_text(yaml.safe_dump(config))
    return "../train/lora.yaml"


def _stage_run(suite_file: Path) -> RunResult:
    suite = load_suite(suite_file)
    run = RunResult("r1", suite.name, str(suite_file), "base", [CandidateResult(c.name) for c in suite.candidates],
                    "2026-12-07T00:00:00+00:00")
    run_contamination(load_inputs(suite), run, {}, SilentProgress())
    check_sections(run.sections, "the run")  # what the stage wrote is its schema
    return run


def _four_candidates(tmp_path: Path) -> list[dict[str, Any]]:
    _data(tmp_path)
    return [
        {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock"},
        {"name": "lora", "model": "smollm2-135m-instruct", "backend": "mock",
         "adapter": _adapter(tmp_path, "lora"), "train": _train_config(tmp_path, "../data/planted.jsonl",
                                                                       "../adapters/lora")},
        {"name": "clean", "model": "smollm2-135m-instruct", "backend": "mock",
         "adapter": _adapter(tmp_path, "clean", manifest_data=tmp_path / "data" / "clean.jsonl")},
        {"name": "assumed", "model": "smollm2-135m-instruct", "backend": "mock", "adapter": _adapter(tmp_path, "bare")},
    ]


def test_a_planted_benchmark_item_is_flagged_clean_data_show_zero_and_a_base_is_unknown(
    tmp_path: Path, counted: list[int]
) -> None:
    run = _stage_run(_suite(tmp_path, _four_candidates(tmp_path)))
    section = ContaminationSection.model_validate(run.sections["contamination"])
    assert (section.n, section.min_words) == (13, 8)
    lora, clean, assumed, base = (section.candidates[name] for name in ("lora", "clean", "assumed", "base"))
    # Each candidate's data is found where it is recorded; a base model's is unknown, not clean.
    assert (lora.training.source, lora.training.path) == ("train_config", str(tmp_path / "data" / "planted.jsonl"))
    assert (clean.training.source, assumed.training.source) == ("manifest", "suite_train_path")
    assert "assumed" in assumed.training.reason
    assert base.training.status == "unknown" and base.benchmarks == {} and base.eval_set is None
    planted = lora.benchmarks["mmlu_mini"]
    assert (planted.items, planted.contaminated, planted.fraction) == (2, 1, 0.5)
    assert planted.examples[0].item_id == ANATOMY[0].id
    assert planted.examples[0].ngram in re.sub(r"[^\w]+", " ", question_prompt(ANATOMY[0], "letter").lower())
    assert clean.benchmarks["mmlu_mini"].contaminated == 0 and assumed.benchmarks["mmlu_mini"].contaminated == 0
    assert section.contaminated("lora") == {"mmlu_mini": planted} and section.contaminated("clean") == {}
    # The training rows repeat the eval inputs with a suffix: the 13- and 11-word inputs are found (the
    # second whole), the 6-word one is too short to test, for all three.
    assert all(c.eval_set is not None and (c.eval_set.contaminated, c.eval_set.too_short) == (2, 1)
               for c in (lora, clean, assumed))
    # clean and assumed train on the same file: each (data, items) pair is computed once.
    assert sorted(counted) == [2, 2, len(CLASSIFIER_ITEMS), len(CLASSIFIER_ITEMS)]
    assert not planted.cached and clean.benchmarks["mmlu_mini"].cached is False
    assert assumed.benchmarks["mmlu_mini"].cached is True


def test_a_second_run_reads_every_figure_from_the_cache(tmp_path: Path, counted: list[int],
                                                        private_cache_home: Path) -> None:
    suite_file = _suite(tmp_path, _four_candidates(tmp_path))
    first = _stage_run(suite_file)
    computed = len(counted)
    second = _stage_run(suite_file)
    assert computed == 4 and len(counted) == computed, "the second run computed nothing"
    assert (private_cache_home / "contamination.sqlite").is_file()
    strip = re.compile(r'"cached": (true|false)')
    assert strip.sub("", json.dumps(first.sections)) == strip.sub("", json.dumps(second.sections))
    assert second.sections["contamination"]["candidates"]["lora"]["benchmarks"]["mmlu_mini"]["cached"] is True
    # The key is the data's content: without the planted row the file is clean.jsonl's bytes, already measured.
    planted = tmp_path / "data" / "planted.jsonl"
    _planted_training(planted, plant=False)
    third = _stage_run(suite_file)
    assert len(counted) == computed
    assert third.sections["contamination"]["candidates"]["lora"]["benchmarks"]["mmlu_mini"]["contaminated"] == 0
    # New content is a new key: measured again.
    planted.write_text(planted.read_text() + json.dumps({"input": "one more row", "output": "{}"}) + "\n")
    _stage_run(suite_file)
    assert len(counted) == computed + 2
    # So is another n.
    _stage_run(_suite(tmp_path / "n", [{"name": "lora", "model": "m", "backend": "mock",
                                        "adapter": _adapter(tmp_path / "n", "bare")}], contamination={"n": 8}))
    assert len(counted) == computed + 4


def test_training_data_changed_since_the_manifest_is_unknown_and_a_plain_suite_gets_no_section(tmp_path: Path) -> None:
    _data(tmp_path)
    data = tmp_path / "data" / "moved.jsonl"
    _planted_training(data, plant=True)
    candidates = [{"name": "base", "model": "m", "backend": "mock"},
                  {"name": "lora", "model": "m", "backend": "mock", "adapter": _adapter(tmp_path, "x", data)}]
    data.write_text(data.read_text() + "\n")  # the data changed after training
    entry = _stage_run(_suite(tmp_path, candidates)).sections["contamination"]["candidates"]["lora"]
    assert entry["training"]["status"] == "unknown" and "gone or changed" in entry["training"]["reason"]
    assert entry["benchmarks"] == {}
    # A sweep's checkpoint has no manifest of its own: the adapter's it was saved in records its data.
    _adapter(tmp_path, "swept", manifest_data=tmp_path / "data" / "clean.jsonl")
    final = tmp_path / "adapters" / "swept"
    step = final / "checkpoints" / "checkpoint-2"
    step.mkdir(parents=True)
    (step / "adapter_config.json").write_text("{}")
    suite = _suite(tmp_path / "sweep", [{"name": "step-2", "model": "m", "backend": "mock", "adapter": str(step)},
                                        {"name": "final", "model": "m", "backend": "mock", "adapter": str(final)}])
    entries = _stage_run(suite).sections["contamination"]["candidates"]
    assert entries["step-2"]["training"]["source"] == "manifest"
    assert entries["step-2"]["training"] == entries["final"]["training"]
    # No benchmarks and no known training data: nothing to test or flag, no section.
    plain = _suite(tmp_path / "plain", [{"name": "base", "model": "m", "backend": "mock"}], benchmarks=[])
    assert "contamination" not in _stage_run(plain).sections
    disabled = _suite(tmp_path / "off", _four_candidates(tmp_path / "off"), contamination={"enabled": False})
    assert "contamination" not in _stage_run(disabled).sections


def test_the_replay_text_mixed_into_training_is_tested_with_the_data(tmp_path: Path) -> None:
    # A benchmark question copied into the replay file (general text mixed into training) is
    # training data like any other: found through the train config and through the manifest.
    from evalkit.files.home import file_sha256

    _data(tmp_path)
    replay = tmp_path / "data" / "replay.jsonl"
    write_jsonl(replay, [{"prompt": "Continue this passage.", "completion": question_prompt(ANATOMY[0], "letter")}])
    config = _train_config(tmp_path, "../data/clean.jsonl", "../adapters/mixed")
    path = tmp_path / "train" / "lora.yaml"
    path.write_text(path.read_text() + "replay:\n  data: ../data/replay.jsonl\n")
    recorded = Path(_adapter(tmp_path, "recorded", manifest_data=tmp_path / "data" / "clean.jsonl").removeprefix("../"))
    manifest_file = tmp_path / recorded / "evalkit-manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "replay_path": "../../data/replay.jsonl",
                                         "replay_sha256": file_sha256(replay), "replay_examples": 1}))
    candidates = [{"name": "mixed", "model": "m", "backend": "mock", "adapter": "../adapters/mixed", "train": config},
                  {"name": "recorded", "model": "m", "backend": "mock", "adapter": f"../{recorded}"},
                  {"name": "plain", "model": "m", "backend": "mock",
                   "adapter": _adapter(tmp_path, "plain", manifest_data=tmp_path / "data" / "clean.jsonl")}]
    section = ContaminationSection.model_validate(_stage_run(_suite(tmp_path, candidates)).sections["contamination"])
    mixed, recorded_entry, plain = (section.candidates[name] for name in ("mixed", "recorded", "plain"))
    assert mixed.training.replay_path == str(replay) and recorded_entry.training.replay_path == str(replay)
    assert mixed.benchmarks["mmlu_mini"].contaminated == 1 and recorded_entry.benchmarks["mmlu_mini"].contaminated == 1
    # The same data without the replay is clean: the replay is what carried the question in.
    assert plain.training.replay_path is None and plain.benchmarks["mmlu_mini"].contaminated == 0
    view = contamination_view(_stage_run(_suite(tmp_path, candidates)))
    assert view is not None and "with the replay text" in dict(view.sources)["mixed"]
    # A replay file changed since training is unknown data, never clean.
    write_jsonl(replay, [{"prompt": "Continue.", "completion": "Something else entirely."}])
    entry = _stage_run(_suite(tmp_path, candidates)).sections["contamination"]["candidates"]["recorded"]
    assert entry["training"]["status"] == "unknown" and "replay text its manifest records" in entry["training"]["reason"]


# --- the report and the CLI ----------------------------------------------------------------------

def test_the_report_flags_the_contaminated_score_and_lists_the_overlap(tmp_path: Path) -> None:
    run = _stage_run(_suite(tmp_path, _four_candidates(tmp_path)))
    run.sections["benchmarks"] = {name: {"mmlu_mini": {"acc": 0.5, "stderr": 0.35, "n": 2}}
                                  for name in ("base", "lora", "clean", "assumed")}
    html = render_report(run)
    capability = html[html.index('<section id="capability">'):html.index('<section id="contamination">')]
    rows = {re.search(r"<td>([a-z]+)</td>", row).group(1): row  # type: ignore[union-attr]
            for row in re.findall(r"<tr><td>.*?</tr>", capability)}
    assert '<strong class="bad">⚠ trained on 1 of 2 items (50.0%)</strong>' in rows["lora"]
    assert "none found (13-gram)" in rows["clean"] and "bad" not in rows["clean"]
    assert "training data unknown" in rows["base"]
    section = html[html.index('<section id="contamination">'):]
    section = section[:section.index("</section>")]
    assert f"<code>{ANATOMY[0].id}</code>" in section and '<strong class="bad">1 of 2 (50.0%)</strong>' in section
    assert "href=\"#contamination\"" in html


def test_evalkit_run_prints_the_flag_and_writes_it_to_the_report(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end on the tiny random model: the benchmark is scored, then flagged beside its score."""
    from evalkit.cli import main

    adapter = _tiny_adapter(tiny_model_dir, tmp_path / "adapters" / "lora")
    suite = _suite(tmp_path, [{"name": "base", "model": str(tiny_model_dir)},
                              {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter)}],
                   bars=[{"lora": "exact_match >= 0.0"}])
    # The adapter records no training data: the suite's train_path is assumed; plant the item there.
    _planted_training(tmp_path / "data" / "clean.jsonl", plant=True)
    main(["run", str(suite), "--out", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert re.search(r"lora\s+│\s+mmlu_mini\s+│\s+CONTAMINATED 1 of 2 \(50\.0%\)", out), out
    assert re.search(r"base\s+│\s+all\s+│\s+training data unknown", out), out
    (run_dir,) = (tmp_path / "reports" / "contaminated").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["sections"]["contamination"]["candidates"]["lora"]["benchmarks"]["mmlu_mini"]["contaminated"] == 1
    assert set(summary["sections"]["benchmarks"]["lora"]) == {"mmlu_mini"}
    assert "⚠ trained on 1 of 2 items (50.0%)" in (run_dir / "report.html").read_text()


def _tiny_adapter(base_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(str(out))
    return out
