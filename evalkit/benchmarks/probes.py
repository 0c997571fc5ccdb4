"""How every bundled probe is written to disk, and the two that are only data and a config.

Every bundled lm-eval task (MMLU in :mod:`~evalkit.benchmarks.tasks`, ifeval in
:mod:`~evalkit.benchmarks.ifeval_task`, the two text probes below, and the Ray shards of
an MMLU task) is written by :func:`write_task`: its data rows as ``data.jsonl`` and one
task YAML that lm-eval loads with ``TaskManager(include_path=...)``, in a directory under
``$EVALKIT_HOME/benchmarks/tasks/`` named by a digest of its content, so it is written
once and reused. :class:`PreparedTask` is what every one of them returns.

The two text probes:

* ``evalkit_general_text``: language modelling on held-out human-written English. The
  corpus is vendored beside this module (``general_text/corpus.jsonl``: essays,
  reference writing and dialogue, each document with its genre and source; where each
  comes from, its licence and why none of it is in evalkit's training data are in
  ``general_text/README.md``). The task is lm-eval's own rolling log-likelihood, as its
  ``wikitext`` task: ``output_type: loglikelihood_rolling``, metrics ``word_perplexity``,
  ``byte_perplexity`` and ``bits_per_byte`` with lm-eval's definitions and aggregations.
  Each document is one paired item: its bits per byte (its summed negative
  log-likelihood, in bits, over its UTF-8 bytes), lower is better.
* ``evalkit_continuation``: which of four continuations is the real one. The items are
  vendored beside this module (``continuation/items.jsonl``; where the text comes from,
  its licences, how the items were made and why none of it is in evalkit's training data
  or in ``evalkit_general_text`` are in ``continuation/README.md``). Each is a passage of
  human-written English cut at a sentence boundary (a lexicon entry, a paragraph of a
  tutorial, a conversation), the true next sentence or turn, and three distractors of
  about its length from other passages of the same genre. The task is lm-eval's own
  multiple choice, as its ``hellaswag``: ``output_type: multiple_choice``, the context,
  then each choice after a space, scored by log-likelihood (no generation), metrics
  ``acc`` and ``acc_norm`` (log-likelihood per byte of the choice) with lm-eval's
  definitions. Each item is one paired pass/fail item: whether the candidate's most
  likely continuation per byte (``acc_norm``) is the real one, 1.0 or 0.0, higher is
  better, so a ``max_drop`` bar compares candidates with McNemar's test and Tango's
  interval on the same items.

Both write their items genres interleaved, so that ``limit: N`` keeps every genre.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.safe_write import write_files_once
from evalkit.files.yaml_source import json_objects

ItemT = TypeVar("ItemT")

TASK_FORMAT_VERSION = 1
"""Part of every task directory's digest: bump it when the generated files change shape
(every bundled task is then written anew, once)."""


@dataclass(frozen=True)
class PreparedTask(Generic[ItemT]):
    """A bundled lm-eval task written to disk.

    Attributes:
        task_name: the lm-eval task name to pass to ``simple_evaluate``.
        include_path: the directory to hand to ``TaskManager(include_path=...)``.
        items: what the data rows were made from, in the data file's order (MMLU
            questions, corpus documents, continuation items, ifeval prompts).
    """

    task_name: str
    include_path: Path
    items: tuple[ItemT, ...]


def json_task_config(task_name: str, data_file: Path) -> dict[str, object]:
    """Return the head every bundled task's lm-eval config starts with: its name and its local JSONL test split."""
    return {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
    }


def write_task(
    prefix: str,
    items: Sequence[ItemT],
    row: Callable[[ItemT], Mapping[str, Any]],
    config: Callable[[str, Path], Mapping[str, object] | str],
    *,
    varies_with: Sequence[object] = (),
    files: Mapping[str, str] | None = None,
) -> PreparedTask[ItemT]:
    """Write a task directory named ``<prefix>_<digest>`` (once) and return it.

    Args:
        prefix: the task name before its digest (``evalkit_<metric>``).
        items: what the task scores, in order; each becomes one line of ``data.jsonl``.
        row: an item's data row.
        config: the task's lm-eval config from its name and its data file: a dict
            (written as YAML) or the YAML text itself (for lm-eval's ``!function`` tags).
        varies_with: what else the YAML depends on besides the data (a formulation, a
            generation length), so each variant gets a directory of its own.
        files: other files the task needs beside its data (``utils.py``).
    """
    data = "".join(json.dumps(row(item), ensure_ascii=False) + "\n" for item in items)
    key = ":".join([str(TASK_FORMAT_VERSION), *(str(part) for part in varies_with), data])
    task_name = f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    directory = evalkit_home() / "benchmarks" / "tasks" / task_name

    def config_text() -> str:
        written = config(task_name, directory / "data.jsonl")
        return written if isinstance(written, str) else yaml.safe_dump(dict(written), sort_keys=False,
                                                                      allow_unicode=True)

    # The YAML goes last: a directory holding it is complete.
    write_files_once(directory, {"data.jsonl": data, **(files or {})}, f"{task_name}.yaml", config_text)
    return PreparedTask(task_name=task_name, include_path=directory, items=tuple(items))


# evalkit_general_text: language modelling on held-out human-written English.

GENERAL_TEXT_TASK = "evalkit_general_text"
CORPUS_DIR = Path(__file__).resolve().parent / "general_text"
CORPUS_FILE = CORPUS_DIR / "corpus.jsonl"
GENERAL_TEXT_GENRES = ("essay", "reference", "dialogue")
GENERAL_TEXT_ITEM_METRIC = "bits_per_byte"
"""The per-document value compared between candidates (lower is better)."""
GENERAL_TEXT_LM_EVAL_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")


@dataclass(frozen=True)
class Document:
    """One corpus document: ``id`` (``<genre>/<nn>``), its genre, its source and its text."""

    id: str
    genre: str
    source: str
    text: str

    def row(self) -> dict[str, Any]:
        """Return the document as the task's data row."""
        return {"id": self.id, "genre": self.genre, "text": self.text}


@cache
def load_corpus(path: Path = CORPUS_FILE) -> tuple[Document, ...]:
    """Return the vendored corpus, in file order.

    Raises:
        BenchmarkError: the file is missing or a line is not a document (named by line).
    """
    if not path.is_file():
        raise BenchmarkError(f"the general-text corpus {path} is missing; reinstall evalkit")
    documents = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
            documents.append(Document(str(record["id"]), str(record["genre"]), str(record["source"]),
                                      str(record["text"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchmarkError(f"{path}:{number}: not a corpus document ({type(exc).__name__}: {exc})") from None
    return tuple(documents)


def select_documents(documents: tuple[Document, ...], genres: list[str] | None) -> list[Document]:
    """Return the documents of ``genres`` (all when None), genres interleaved in corpus order.

    Interleaving (the first of each genre, then the second of each...) makes lm-eval's
    ``limit`` (the first N documents) a sample of every genre.
    """
    wanted = genres or list(GENERAL_TEXT_GENRES)
    by_genre = {genre: [d for d in documents if d.genre == genre] for genre in wanted}
    longest = max((len(group) for group in by_genre.values()), default=0)
    return [group[i] for i in range(longest) for group in by_genre.values() if i < len(group)]


def general_text_yaml(task_name: str, data_file: Path) -> dict[str, object]:
    """Return the lm-eval task config over a local JSONL corpus: rolling log-likelihood, as ``wikitext``."""
    return {
        **json_task_config(task_name, data_file),
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "should_decontaminate": True,
        "doc_to_decontamination_query": "{{text}}",
        # lm-eval's own aggregations (weighted perplexity, bits per byte) and direction (lower is better).
        "metric_list": [{"metric": metric} for metric in GENERAL_TEXT_LM_EVAL_METRICS],
        "metadata": {"version": 1.0},
    }


def prepare_general_text_task(metric_name: str, genres: list[str] | None) -> PreparedTask[Document]:
    """Write the task directory for the selected genres (once) and return it.

    Raises:
        BenchmarkError: the corpus is missing or damaged.
    """
    documents = select_documents(load_corpus(), genres)
    return write_task(f"evalkit_{metric_name}", documents, Document.row, general_text_yaml)


# evalkit_continuation: which of four continuations is the real one.

CONTINUATION_TASK = "evalkit_continuation"
CONTINUATION_ITEMS_FILE = Path(__file__).resolve().parent / "continuation" / "items.jsonl"
CONTINUATION_GENRES = ("lexicon", "tutorial", "dialogue")
CONTINUATION_CHOICES = 4
CONTINUATION_ITEM_METRIC = "acc_norm"
"""The per-item value compared between candidates: the real continuation ranked first per byte (1.0) or not."""
CONTINUATION_LM_EVAL_METRICS = ("acc", "acc_norm")
_CONTINUATION_FIX = ("each line must be an item: id, genre, source, origin, context (text), choices (4 distinct "
                     "texts), answer (the real one's index); rebuild it with continuation/make_items.py")


@dataclass(frozen=True)
class ContinuationItem:
    """One item: its ``id`` (``<genre>/<nn>``), genre, source package, origin in it, context, choices, answer."""

    id: str
    genre: str
    source: str
    origin: str
    context: str
    choices: tuple[str, ...]
    answer: int

    def row(self) -> dict[str, Any]:
        """Return the item as the task's data row."""
        return {"id": self.id, "genre": self.genre, "context": self.context, "choices": list(self.choices),
                "answer": self.answer}

    def text(self) -> str:
        """Return everything the model is shown of the item: the context, then each choice on its own line."""
        return "\n".join([self.context, *self.choices])


@cache
def load_items(path: Path = CONTINUATION_ITEMS_FILE) -> tuple[ContinuationItem, ...]:
    """Return the vendored continuation items, in file order (genres interleaved).

    Raises:
        BenchmarkError: the file is missing, or a line is not an item (named by line and
            field), or two items share an id.
    """
    if not path.is_file():
        raise BenchmarkError(f"the continuation items {path} are missing; reinstall evalkit")
    items: list[ContinuationItem] = []
    seen: set[str] = set()
    for number, record in json_objects(path, _CONTINUATION_FIX, BenchmarkError):
        problem = _item_problem(record)
        if problem is None and record["id"] in seen:
            problem = f"id {record['id']!r} is used twice"
        if problem is not None:
            raise BenchmarkError(f"{path}:{number}: {problem}; {_CONTINUATION_FIX}")
        seen.add(record["id"])
        items.append(ContinuationItem(record["id"], record["genre"], record["source"], record["origin"],
                                      record["context"], tuple(record["choices"]), record["answer"]))
    if not items:
        raise BenchmarkError(f"{path}: no items; {_CONTINUATION_FIX}")
    return tuple(items)


def _item_problem(record: dict[str, Any]) -> str | None:
    for key in ("id", "genre", "source", "origin", "context"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"'{key}' must be a non-empty string"
    if record["genre"] not in CONTINUATION_GENRES:
        return f"'genre' must be one of {', '.join(CONTINUATION_GENRES)}, not {record['genre']!r}"
    choices = record.get("choices")
    if (not isinstance(choices, list) or len(choices) != CONTINUATION_CHOICES
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        return f"'choices' must be a list of {CONTINUATION_CHOICES} non-empty strings"
    if len({c.strip().casefold() for c in choices}) != CONTINUATION_CHOICES:
        return "'choices' must be distinct"
    answer = record.get("answer")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < CONTINUATION_CHOICES:
        return f"'answer' must be the real continuation's index, 0 to {CONTINUATION_CHOICES - 1}"
    return None


def continuation_yaml(task_name: str, data_file: Path) -> dict[str, object]:
    """Return the lm-eval task config over a local JSONL file: multiple choice by log-likelihood, as ``hellaswag``."""
    return {
        **json_task_config(task_name, data_file),
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "should_decontaminate": True,
        "doc_to_decontamination_query": "{{context}}",
        "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}
                        for metric in CONTINUATION_LM_EVAL_METRICS],
        "metadata": {"version": 1.0},
    }


def prepare_continuation_task(metric_name: str,
                              path: Path = CONTINUATION_ITEMS_FILE) -> PreparedTask[ContinuationItem]:
    """Write the task directory (once) and return it.

    Raises:
        BenchmarkError: the items are missing or damaged.
    """
    return write_task(f"evalkit_{metric_name}", load_items(path), ContinuationItem.row, continuation_yaml)
