"""The ``evalkit_continuation`` task: which of four continuations is the real one.

The items are vendored beside this module (``continuation/items.jsonl``; where the
text comes from, its licences, how the items were made and why none of it is in
evalkit's training data or in ``evalkit_general_text`` are in ``continuation/README.md``).
Each is a passage of human-written English cut at a sentence boundary (a lexicon entry,
a paragraph of a tutorial, a conversation), the true next sentence or turn, and three
distractors of about its length from other passages of the same genre.

The task is lm-eval's own multiple choice, as its ``hellaswag``: ``output_type:
multiple_choice``, the context, then each choice after a space, scored by
log-likelihood (no generation), metrics ``acc`` and ``acc_norm`` (log-likelihood per
byte of the choice) with lm-eval's definitions. Each item is one paired pass/fail item:
whether the candidate's most likely continuation per byte (``acc_norm``) is the real
one, 1.0 or 0.0, higher is better, so a ``max_drop`` bar compares candidates with
McNemar's test and Tango's interval on the same items. The selected items are written,
genres interleaved so that ``limit: N`` keeps every genre, to a task directory under
``$EVALKIT_HOME/benchmarks/tasks/`` named by a digest of its content (written once,
reused), like the other bundled tasks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.safe_write import write_files_once
from evalkit.files.yaml_source import json_objects

CONTINUATION_TASK = "evalkit_continuation"
ITEMS_FILE = Path(__file__).resolve().parent / "continuation" / "items.jsonl"
GENRES = ("lexicon", "tutorial", "dialogue")
CHOICES = 4
ITEM_METRIC = "acc_norm"
"""The per-item value compared between candidates: the real continuation ranked first per byte (1.0) or not."""
LM_EVAL_METRICS = ("acc", "acc_norm")
_TASK_FORMAT_VERSION = 1  # bump when the generated files change shape
_FIX = ("each line must be an item: id, genre, source, origin, context (text), choices (4 distinct texts), "
        "answer (the real one's index); rebuild it with continuation/make_items.py")


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
def load_items(path: Path = ITEMS_FILE) -> tuple[ContinuationItem, ...]:
    """Return the vendored items, in file order (genres interleaved).

    Raises:
        BenchmarkError: the file is missing, or a line is not an item (named by line and
            field), or two items share an id.
    """
    if not path.is_file():
        raise BenchmarkError(f"the continuation items {path} are missing; reinstall evalkit")
    items: list[ContinuationItem] = []
    seen: set[str] = set()
    for number, record in json_objects(path, _FIX, BenchmarkError):
        problem = _item_problem(record)
        if problem is None and record["id"] in seen:
            problem = f"id {record['id']!r} is used twice"
        if problem is not None:
            raise BenchmarkError(f"{path}:{number}: {problem}; {_FIX}")
        seen.add(record["id"])
        items.append(ContinuationItem(record["id"], record["genre"], record["source"], record["origin"],
                                      record["context"], tuple(record["choices"]), record["answer"]))
    if not items:
        raise BenchmarkError(f"{path}: no items; {_FIX}")
    return tuple(items)


def _item_problem(record: dict[str, Any]) -> str | None:
    for key in ("id", "genre", "source", "origin", "context"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"'{key}' must be a non-empty string"
    if record["genre"] not in GENRES:
        return f"'genre' must be one of {', '.join(GENRES)}, not {record['genre']!r}"
    choices = record.get("choices")
    if (not isinstance(choices, list) or len(choices) != CHOICES
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        return f"'choices' must be a list of {CHOICES} non-empty strings"
    if len({c.strip().casefold() for c in choices}) != CHOICES:
        return "'choices' must be distinct"
    answer = record.get("answer")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < CHOICES:
        return f"'answer' must be the real continuation's index, 0 to {CHOICES - 1}"
    return None


def task_yaml(task_name: str, data_file: Path) -> dict[str, object]:
    """Return the lm-eval task config over a local JSONL file: multiple choice by log-likelihood, as ``hellaswag``."""
    return {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer",
        "target_delimiter": " ",
        "should_decontaminate": True,
        "doc_to_decontamination_query": "{{context}}",
        "metric_list": [{"metric": metric, "aggregation": "mean", "higher_is_better": True}
                        for metric in LM_EVAL_METRICS],
        "metadata": {"version": 1.0},
    }


@dataclass(frozen=True)
class PreparedContinuationTask:
    """The continuation task written to disk: its lm-eval name, directory and items."""

    task_name: str
    include_path: Path
    items: tuple[ContinuationItem, ...]


def prepare_continuation_task(metric_name: str, path: Path = ITEMS_FILE) -> PreparedContinuationTask:
    """Write the task directory (once) and return it.

    Raises:
        BenchmarkError: the items are missing or damaged.
    """
    items = load_items(path)
    data = "".join(json.dumps(item.row(), ensure_ascii=False) + "\n" for item in items)
    digest = hashlib.sha256(f"{_TASK_FORMAT_VERSION}:{data}".encode()).hexdigest()[:12]
    task_name = f"evalkit_{metric_name}_{digest}"
    directory = evalkit_home() / "benchmarks" / "tasks" / task_name
    write_files_once(directory, {"data.jsonl": data}, f"{task_name}.yaml", lambda: yaml.safe_dump(
        task_yaml(task_name, directory / "data.jsonl"), sort_keys=False, allow_unicode=True))
    return PreparedContinuationTask(task_name=task_name, include_path=directory, items=items)
