"""evalkit_continuation: the vendored items, how they are made, and the task end to end on the tiny model.

Fast: the items are checked as data (four distinct choices, the real one's index, answer
positions and lengths that give nothing away, distractors from other documents, no text
shared with evalkit_general_text or the training data); the builder's item logic runs on
passages written here; the task runs through lm-eval's own ``multiple_choice`` machinery
on the tiny random model and gives per item exactly what lm-eval's ``hf`` model gives; a
suite compares it paired (McNemar, Tango's interval) under a ``max_drop`` bar.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lm_eval.models.huggingface import HFLM
from test_benchmark_stage import make_adapter  # the same directory: pytest puts it on sys.path

from evalkit.benchmarks.evaluate import benchmark_documents, evaluate_benchmark, prepare_benchmark
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import (
    CONTINUATION_CHOICES,
    CONTINUATION_GENRES,
    CONTINUATION_ITEMS_FILE,
    CONTINUATION_LM_EVAL_METRICS,
    load_corpus,
    load_items,
    prepare_continuation_task,
)
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.contamination.ngrams import find_overlap, training_texts
from evalkit.errors import BenchmarkError, ConfigError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.runner import execute_suite
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = CONTINUATION_ITEMS_FILE.parent


def _make_items() -> ModuleType:
    """The build script (a file beside the data, not a module of the package)."""
    spec = importlib.util.spec_from_file_location("continuation_make_items", DATA_DIR / "make_items.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _truth(item: Any) -> str:
    return str(item.choices[item.answer])


def test_items_are_well_formed_and_interleave_their_genres() -> None:
    items = load_items()
    assert len(items) == 240 and len({item.id for item in items}) == 240
    assert Counter(item.genre for item in items) == {genre: 80 for genre in CONTINUATION_GENRES}
    assert [item.genre for item in items[:3]] == list(CONTINUATION_GENRES)  # a limit keeps every genre
    for item in items:
        assert item.id.startswith(f"{item.genre}/") and item.source and item.origin.startswith(item.genre)
        assert len(item.choices) == CONTINUATION_CHOICES and 0 <= item.answer < CONTINUATION_CHOICES
        assert len({choice.casefold() for choice in item.choices}) == CONTINUATION_CHOICES, item.id
        assert all(choice not in item.context for choice in item.choices), item.id
        assert item.context.split()  # never empty
    # The real one sits at every position about equally often: position is no cue.
    positions = Counter(item.answer for item in items)
    assert set(positions) == set(range(CONTINUATION_CHOICES)) and max(positions.values()) <= 0.32 * len(items), positions


def test_length_gives_the_real_continuation_away_no_more_than_chance() -> None:
    items = load_items()
    longest = sum(_truth(i) == max(i.choices, key=len) for i in items) / len(items)
    shortest = sum(_truth(i) == min(i.choices, key=len) for i in items) / len(items)
    # Picking the longest or the shortest choice must score near chance (25%), not above 35%.
    assert longest < 0.35 and shortest < 0.35, (longest, shortest)


def test_distractors_come_from_other_documents_than_the_item() -> None:
    items = load_items()
    # A real continuation is a sentence of its item's document; the same sentence may never be a
    # distractor of another item of that document (it would then be "false" there).
    document = {item.id: item.origin.rsplit("#", 1)[0] for item in items}
    truths_by_document: dict[str, set[str]] = {}
    for item in items:
        truths_by_document.setdefault(document[item.id], set()).add(_truth(item))
    for item in items:
        own = truths_by_document[document[item.id]]
        distractors = [c for n, c in enumerate(item.choices) if n != item.answer]
        assert not own.intersection(distractors), item.id


def test_items_share_no_text_with_general_text_or_the_training_data() -> None:
    documents = benchmark_documents(BenchmarkSpec(task="evalkit_continuation"), Path("."))
    assert documents is not None and len(documents) == 240
    assert documents[0] == (load_items()[0].id, load_items()[0].text())
    general_text = find_overlap([d.text for d in load_corpus()], documents)
    assert general_text.contaminated == 0, general_text.examples
    training = [text for path in sorted((REPO / "data" / "classifier").glob("*.jsonl"))
                for text in training_texts(path)]
    assert training, "the classifier's training data is in the repository"
    found = find_overlap(training, documents)
    assert found.contaminated == 0, found.examples
    # The test would see a copy: an item's context planted in training text is found.
    planted = find_overlap(["Ticket: " + documents[5][1].upper()], documents)
    assert planted.contaminated >= 1 and planted.examples[0].item_id == documents[5][0]


def test_readme_names_every_source_and_licence() -> None:
    readme = (DATA_DIR / "README.md").read_text()
    for needed in ("jargon-text", "python3.11-doc", "chatterbot-corpus", "make_items.py", "public domain",
                   "PSF", "BSD-3-Clause", "13-gram"):
        assert needed in readme, needed
    for licence in ("jargon-file-public-domain.txt", "PSF-2.0.txt", "BSD-3-Clause-chatterbot-corpus.txt"):
        assert (DATA_DIR.parent / "general_text" / "LICENSES" / licence).is_file()
        assert licence in readme
    sources = {item.source for item in load_items()}
    assert any("jargon-text 4.4.7-4.1" in s for s in sources) and any("python3.11-doc" in s for s in sources)


def _passages(module: ModuleType) -> list[Any]:
    """Six documents of two passages each, with sentences long enough for a 60-word context."""
    passages = []
    for document in range(6):
        for part in range(2):
            sentences = [(0, f"Document {document} part {part} sentence {n} says something about topic "
                             f"number {document} and nothing of any other topic at all, really.")
                         for n in range(8)]
            passages.append(module.Passage(f"doc{document}", f"doc{document}#{part}", f"title {document}",
                                           tuple(sentences)))
    return passages


def test_the_builder_cuts_at_a_sentence_and_draws_distractors_from_other_documents() -> None:
    module = _make_items()
    passages = _passages(module)
    records = module.build_genre("tutorial", "made here", passages, lambda text: True)
    assert records == module.build_genre("tutorial", "made here", passages, lambda text: True)  # deterministic
    assert len(records) == len(passages)
    for record in records:
        document = record["origin"].split("#")[0]
        truth = record["choices"][record["answer"]]
        assert truth.startswith(f"Document {document[3:]} ")  # the real one comes from the passage itself
        assert record["context"].endswith(".") and module.CONTEXT_WORDS[0] <= len(record["context"].split())
        following = record["context"].rsplit(". ", 1)[-1]  # the context's last sentence is the one before it
        assert int(following.split(" sentence ")[1].split()[0]) + 1 == int(truth.split(" sentence ")[1].split()[0])
        distractors = [c for n, c in enumerate(record["choices"]) if n != record["answer"]]
        assert len(set(distractors)) == 3 and not any(c.startswith(f"Document {document[3:]} ") for c in distractors)
    # Another seed draws other cuts or distractors: the seed, not chance, fixes the file.
    module.SEED = "another seed"
    assert module.build_genre("tutorial", "made here", passages, lambda text: True) != records
    # A passage the overlap test rejects is never used.
    kept = module.build_genre("tutorial", "made here", passages, lambda text: "Document 0 " not in text)
    assert all(not r["origin"].startswith("doc0#") for r in kept) and len(kept) == len(passages) - 2


def test_rst_markup_is_rendered_as_the_page_reads() -> None:
    module = _make_items()
    assert module.rst_inline("Call :func:`len` or :meth:`~str.split` on ``text``, see :pep:`8`.") == \
        "Call len() or split() on text, see PEP 8."
    assert module.rst_inline("Read `the guide <https://example.org>`_ first.") == "Read the guide first."
    assert module.rst_inline("See :ref:`tut-private` below.") is None  # a title evalkit cannot know
    runs = list(module.rst_runs("Title\n=====\n\nFirst paragraph of prose here, long enough to keep.\n\n"
                                "::\n\n   code()\n\nSecond paragraph of prose here, long enough to keep.\n"))
    assert runs == [("Title", ["First paragraph of prose here, long enough to keep."]),
                    ("Title", ["Second paragraph of prose here, long enough to keep."])]  # never across code


def test_task_is_written_once_and_named_by_its_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path))
    first = prepare_continuation_task("continuation")
    again = prepare_continuation_task("continuation")
    assert first.task_name == again.task_name and first.task_name.startswith("evalkit_continuation_")
    rows = [json.loads(line) for line in (first.include_path / "data.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [item.id for item in load_items()]
    assert rows[0] == load_items()[0].row()
    config = (first.include_path / f"{first.task_name}.yaml").read_text()
    assert "output_type: multiple_choice" in config and "acc_norm" in config


def test_a_damaged_items_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    good = CONTINUATION_ITEMS_FILE.read_text().splitlines()[0]
    record = json.loads(good)
    for damage, message in ((dict(record, answer=4), "'answer' must be"),
                            (dict(record, choices=record["choices"][:3]), "'choices' must be a list of 4"),
                            (dict(record, choices=[record["choices"][0]] * 4), "'choices' must be distinct"),
                            (dict(record, genre="poetry"), "'genre' must be one of")):
        path = tmp_path / "items.jsonl"
        path.write_text(good + "\n" + json.dumps(damage) + "\n")
        with pytest.raises(BenchmarkError, match=rf"items\.jsonl:2: {message}"):
            load_items.__wrapped__(path)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(BenchmarkError, match="is used twice"):
        load_items.__wrapped__(path)


def test_spec_registers_the_task_and_refuses_options_of_other_tasks() -> None:
    spec = BenchmarkSpec(task="evalkit_continuation", name="continuation", limit=30, max_drop="3%")
    assert spec.is_continuation and spec.metric == "continuation" and not spec.is_general_text
    for bad in ({"genres": ["essay"]}, {"subjects": ["anatomy"]}, {"num_fewshot": 2}, {"lm_eval_metric": "acc"},
                {"limit_per_subject": 2}):
        with pytest.raises(ValueError, match="not for 'evalkit_continuation'"):
            BenchmarkSpec(task="evalkit_continuation", **bad)


def test_task_scores_through_lm_eval_exactly_as_lm_evals_hf_model(
    tiny_backend: HFBackend, tiny_variant: ModelVariant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path))
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_continuation", limit=6), tmp_path)
    outcome = evaluate_benchmark(task, EvalkitLM(tiny_backend, tiny_variant, batch_size=4))
    assert outcome.metric == "acc_norm" and outcome.higher_is_better
    assert set(outcome.items) == {item.id for item in load_items()[:6]}
    assert set(outcome.items.values()) <= {0.0, 1.0}
    assert set(outcome.subjects) == set(CONTINUATION_GENRES)
    assert set(outcome.lm_eval_scores) == set(CONTINUATION_LM_EVAL_METRICS)
    assert outcome.acc == pytest.approx(sum(outcome.items.values()) / 6)
    # lm-eval's own reference model on the same weights picks the same choice for every item.
    loaded = tiny_backend.load(tiny_variant)
    reference = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4, device="cpu")
    assert evaluate_benchmark(task, reference).items == outcome.items


def test_suite_compares_continuation_paired_with_a_max_drop_bar(make_suite: Any, tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dir, tmp_path / "lora")
    suite_file = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "lora", "model": str(tiny_model_dir), "adapter": str(adapter)}],
        benchmarks=[{"task": "evalkit_continuation", "name": "continuation", "limit": 9, "max_drop": "3%"}],
        bars=[{"lora": "continuation max_drop 3%"}],
    )
    run = execute_suite(load_suite(suite_file))
    assert run.sections["metric_kinds"]["continuation"] == {"kind": "binary", "higher_is_better": True}
    entry = run.sections["benchmarks"]["lora"]["continuation"]
    assert entry["metric"] == "acc_norm" and entry["n"] == 9 and set(entry["subjects"]) == set(CONTINUATION_GENRES)
    assert set(entry["lm_eval_scores"]) == set(CONTINUATION_LM_EVAL_METRICS)
    ids = {item.id for item in load_items()[:9]}
    assert set(run.candidate("lora").item_values["continuation"]) == ids
    assert set(run.candidate("base").item_values["continuation"]) == ids
    compared = run.sections["comparison"]["candidates"]["lora"]["metrics"]["continuation"]
    assert compared["test"] == "mcnemar" and compared["n_items"] == 9 and compared["threshold"] == "3%"
    (bar,) = run.sections["bars"]
    assert bar["status"] in ("passed", "failed", "inconclusive")


def test_suite_with_options_of_another_task_is_a_config_error(make_suite: Any) -> None:
    suite_file = make_suite(benchmarks=[{"task": "evalkit_continuation", "genres": ["essay"]}])
    with pytest.raises(ConfigError, match="not for 'evalkit_continuation'"):
        load_suite(suite_file)
