"""The ``evalkit_general_text`` task: language modelling on held-out human-written English.

The corpus is vendored beside this module (``general_text/corpus.jsonl``: essays,
reference writing and dialogue, each document with its genre and source; where each
comes from, its licence and why none of it is in evalkit's training data are in
``general_text/README.md``). The task is lm-eval's own rolling log-likelihood, as its
``wikitext`` task: ``output_type: loglikelihood_rolling``, metrics ``word_perplexity``,
``byte_perplexity`` and ``bits_per_byte`` with lm-eval's definitions and aggregations.

Each document is one paired item: its bits per byte (its summed negative
log-likelihood, in bits, over its UTF-8 bytes), lower is better. The selected documents
are written, genres interleaved so that ``limit: N`` keeps every genre, to a task
directory under ``$EVALKIT_HOME/benchmarks/tasks/`` named by a digest of its content
(written once, reused), like the bundled MMLU tasks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.safe_write import write_files_once

GENERAL_TEXT_TASK = "evalkit_general_text"
CORPUS_DIR = Path(__file__).resolve().parent / "general_text"
CORPUS_FILE = CORPUS_DIR / "corpus.jsonl"
GENRES = ("essay", "reference", "dialogue")
ITEM_METRIC = "bits_per_byte"
"""The per-document value compared between candidates (lower is better)."""
LM_EVAL_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")
_TASK_FORMAT_VERSION = 1  # bump when the generated files change shape


@dataclass(frozen=True)
class Document:
    """One corpus document: ``id`` (``<genre>/<nn>``), its genre, its source and its text."""

    id: str
    genre: str
    source: str
    text: str


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
    wanted = genres or list(GENRES)
    by_genre = {genre: [d for d in documents if d.genre == genre] for genre in wanted}
    longest = max((len(group) for group in by_genre.values()), default=0)
    return [group[i] for i in range(longest) for group in by_genre.values() if i < len(group)]


def task_yaml(task_name: str, data_file: Path) -> dict[str, object]:
    """Return the lm-eval task config over a local JSONL corpus: rolling log-likelihood, as ``wikitext``."""
    return {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "should_decontaminate": True,
        "doc_to_decontamination_query": "{{text}}",
        # lm-eval's own aggregations (weighted perplexity, bits per byte) and direction (lower is better).
        "metric_list": [{"metric": metric} for metric in LM_EVAL_METRICS],
        "metadata": {"version": 1.0},
    }


@dataclass(frozen=True)
class PreparedTextTask:
    """The general-text task written to disk: its lm-eval name, directory and documents."""

    task_name: str
    include_path: Path
    documents: tuple[Document, ...]


def prepare_general_text_task(metric_name: str, genres: list[str] | None) -> PreparedTextTask:
    """Write the task directory for the selected genres (once) and return it.

    Raises:
        BenchmarkError: the corpus is missing or damaged.
    """
    documents = select_documents(load_corpus(), genres)
    data = "".join(
        json.dumps({"id": d.id, "genre": d.genre, "text": d.text}, ensure_ascii=False) + "\n" for d in documents
    )
    digest = hashlib.sha256(f"{_TASK_FORMAT_VERSION}:{data}".encode()).hexdigest()[:12]
    task_name = f"evalkit_{metric_name}_{digest}"
    directory = evalkit_home() / "benchmarks" / "tasks" / task_name
    write_files_once(directory, {"data.jsonl": data}, f"{task_name}.yaml", lambda: yaml.safe_dump(
        task_yaml(task_name, directory / "data.jsonl"), sort_keys=False, allow_unicode=True))
    return PreparedTextTask(task_name=task_name, include_path=directory, documents=tuple(documents))
