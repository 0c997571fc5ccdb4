"""Benchmarks through lm-eval's ``simple_evaluate``: the MMLU tasks, the outcome evalkit keeps, its cache.

:func:`prepare_benchmark` turns a spec into a :class:`BenchmarkTask` (the MMLU tasks
are generated over the bundled data; any other name is looked up among lm-eval's tasks
and the spec's ``include_path``), :func:`evaluate_benchmark` runs it on one lm-eval
model and returns a :class:`BenchmarkOutcome`: lm-eval's overall score, per-subject
accuracy with standard errors, and every item's value keyed by a stable id, with the
direction lm-eval declares for the metric (``higher_is_better``).

An item's value is its per-item metric as lm-eval logs it. A rolling log-likelihood
task (``loglikelihood_rolling``: ``wikitext``, ``evalkit_general_text``) logs its
perplexity metrics as ``(log-likelihood, words or bytes)`` pairs, which lm-eval only
aggregates over the corpus; each document's own value is that aggregate over the one
document (:func:`item_value`): its bits per byte, or its byte or word perplexity.

Also here:

* lm-eval task definitions over evalkit's local MMLU data, generated per benchmark spec
  (:func:`prepare_mmlu_task`, :func:`mmlu_task_yaml`).
* The texts a benchmark shows a model, item by item: what contamination is measured on (:func:`benchmark_documents`).
* The benchmark results cache: one SQLite file, ``$EVALKIT_HOME/benchmarks.sqlite`` (:func:`benchmark_cache`,
  :func:`benchmark_key`).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit.benchmarks.mmlu_data import MmluQuestion, load_mmlu, select_items
from evalkit.benchmarks.probes import (
    CONTINUATION_ITEM_METRIC,
    CONTINUATION_TASK,
    GENERAL_TEXT_ITEM_METRIC,
    GENERAL_TEXT_TASK,
    IFEVAL_ITEM_METRIC,
    IFEVAL_TASK,
    PreparedTask,
    json_task_config,
    load_corpus,
    load_items,
    load_prompts,
    prepare_continuation_task,
    prepare_general_text_task,
    prepare_ifeval_task,
    select_documents,
    write_task,
)
from evalkit.benchmarks.probes import MAX_GEN_TOKS as IFEVAL_MAX_GEN_TOKS
from evalkit.benchmarks.spec import MMLU_TASKS, BenchmarkSpec, Formulation
from evalkit.errors import BenchmarkError
from evalkit.files.home import cache_home, files_digest, json_digest
from evalkit.record.run_facts import evalkit_version
from evalkit.store.cache import JsonCache

# lm-eval task definitions over evalkit's local MMLU data, generated per benchmark spec.
#
# For each spec a directory under ``$EVALKIT_HOME/benchmarks/tasks/`` holds the selected
# questions (``data.jsonl``) and one task YAML that lm-eval loads with
# ``TaskManager(include_path=...)``, written once and reused by
# :func:`~evalkit.benchmarks.probes.write_task`, as every bundled task is.
#
# Formulations:
#
# * ``letter`` is lm-eval's standard MMLU task: the subject line
#   ``The following are multiple choice questions (with answers) about <subject>.``,
#   then ``<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:``, choices ``A``-``D``,
#   metric ``acc``.
# * ``cloze`` is lm-eval's ``mmlu_continuation`` prompt, ``Question: <question>\nAnswer:``,
#   scoring each answer text, metric ``acc_norm`` (log-likelihood per byte), the
#   formulation behind published small-model figures.
#
# k-shot: lm-eval's own sampler draws from a whole split, not from one subject, so the
# examples are rendered here into each question's ``prefix`` field: ``k`` questions of
# the same subject in a fixed order of their own, never the evaluated question, in the
# format lm-eval uses for shots (``<question prompt> <answer>\n\n``). This differs from
# the standard 5-shot prompt (drawn from the dev split, which the bundled data lacks), so
# results say ``fewshot_source: same_subject_test``.
#
# Also in this module:
#
# * The texts a benchmark shows a model, item by item: what contamination is measured on.

_LETTERS = "ABCD"

FEWSHOT_SOURCE = "same_subject_test"
"""How MMLU few-shot examples are drawn, as recorded in results."""

# lm-eval's prompts (tasks/mmlu/default and tasks/mmlu/continuation), after our prefix.
_DOC_TO_TEXT: dict[Formulation, str] = {
    "letter": (
        "{{prefix}}{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\n"
        "C. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
    ),
    "cloze": "{{prefix}}Question: {{question.strip()}}\nAnswer:",
}
_METRIC: dict[Formulation, str] = {"letter": "acc", "cloze": "acc_norm"}


def metric_for(formulation: Formulation) -> str:
    """Return the lm-eval metric a formulation is scored with (``acc`` or ``acc_norm``)."""
    return _METRIC[formulation]


def question_prompt(question: MmluQuestion, formulation: Formulation) -> str:
    """Return a question as the formulation shows it, up to ``Answer:``."""
    if formulation == "letter":
        options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(_LETTERS, question.choices, strict=True))
        return f"{question.question.strip()}{options}\nAnswer:"
    return f"Question: {question.question.strip()}\nAnswer:"


def answer_text(question: MmluQuestion, formulation: Formulation) -> str:
    """Return the correct answer as a shot shows it (the letter, or the answer text)."""
    return _LETTERS[question.answer] if formulation == "letter" else question.choices[question.answer]


def subject_line(subject: str) -> str:
    """Return lm-eval's MMLU description for a subject (the line before the questions)."""
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def fewshot_key(question_id: str) -> str:
    """Return the key ordering a subject's questions as few-shot examples."""
    return hashlib.sha256(f"evalkit-mmlu-shots:{question_id}".encode()).hexdigest()


def fewshot_pools(questions: Sequence[MmluQuestion], num_fewshot: int) -> dict[str, list[MmluQuestion]]:
    """Return, per subject, the ``num_fewshot + 1`` questions few-shot examples come from.

    Each subject's questions are taken in a fixed order of their own (by
    :func:`fewshot_key`), so most questions see the same examples, like a fixed dev set;
    one spare covers the question that is itself in the pool.
    """
    by_subject: dict[str, list[MmluQuestion]] = {}
    for question in questions:
        by_subject.setdefault(question.subject, []).append(question)
    return {
        subject: sorted(group, key=lambda q: fewshot_key(q.id))[: num_fewshot + 1]
        for subject, group in by_subject.items()
    }


def fewshot_examples(
    question: MmluQuestion, pools: dict[str, list[MmluQuestion]], num_fewshot: int
) -> list[MmluQuestion]:
    """Return ``num_fewshot`` examples for a question: same subject, never itself."""
    return [q for q in pools.get(question.subject, []) if q.id != question.id][:num_fewshot]


def render_prefix(question: MmluQuestion, shots: Sequence[MmluQuestion], formulation: Formulation) -> str:
    """Return what precedes a question: the subject line (letter only) and the shots."""
    prefix = subject_line(question.subject) if formulation == "letter" else ""
    for shot in shots:
        # lm-eval's shot format: prompt, target delimiter " ", answer, fewshot delimiter "\n\n".
        prefix += f"{question_prompt(shot, formulation)} {answer_text(shot, formulation)}\n\n"
    return prefix


def mmlu_task_yaml(task_name: str, data_file: Path, formulation: Formulation) -> dict[str, object]:
    """Return the lm-eval task config of an MMLU formulation over a local JSONL file."""
    return {
        **json_task_config(task_name, data_file),
        "output_type": "multiple_choice",
        "doc_to_text": _DOC_TO_TEXT[formulation],
        "doc_to_choice": ["A", "B", "C", "D"] if formulation == "letter" else "{{choices}}",
        "doc_to_target": "answer",
        "metric_list": [
            {"metric": metric, "aggregation": "mean", "higher_is_better": True}
            for metric in (("acc",) if formulation == "letter" else ("acc", "acc_norm"))
        ],
        "metadata": {"version": 1.0},
    }


def prepare_mmlu_task(spec: BenchmarkSpec) -> PreparedTask[MmluQuestion]:
    """Select the spec's questions and write its lm-eval task directory (once).

    Each data row is the question's record plus ``prefix``: the subject line (letter
    only) and its few-shot examples, rendered (see the module docstring).

    Raises:
        BenchmarkError: the MMLU data is missing (with how to install it) or malformed,
            or a subject is unknown.
    """
    formulation = spec.resolved_formulation
    assert formulation is not None, "prepare_mmlu_task takes MMLU specs only"
    questions = load_mmlu()
    pools = fewshot_pools(questions, spec.num_fewshot)

    def row(question: MmluQuestion) -> dict[str, object]:
        shots = fewshot_examples(question, pools, spec.num_fewshot)
        return dict(question.to_record(), prefix=render_prefix(question, shots, formulation))

    return write_task(f"evalkit_{spec.metric}", select_items(questions, spec.subjects, spec.per_subject_limit), row,
                      lambda name, data_file: mmlu_task_yaml(name, data_file, formulation), varies_with=(formulation,))


# The texts a benchmark shows a model, item by item: what contamination is measured on.
#
# :func:`benchmark_documents` is the one place that knows how to list a benchmark's items
# as text. It reads evalkit's own data for evalkit's bundled tasks and imports nothing
# heavy (no lm-eval, no torch).

BenchmarkDocument = tuple[str, str]
"""(item id, as the benchmark's per-item results name it; the item's text)."""


def benchmark_documents(spec: BenchmarkSpec, base_dir: Path) -> list[BenchmarkDocument] | None:
    """Return every item a benchmark entry scores as (item id, text), or None when evalkit cannot list them.

    The text is what the model is shown of the item (the n-gram test normalises case
    and punctuation away). The ids are the ones the benchmark's per-item results use,
    so a contaminated item can be found in the results.

    * MMLU (``evalkit_mmlu*``): lm-eval's letter prompt of each question the entry
      selects (``subjects``, ``limit_per_subject``): the question, ``A. <choice>`` ...
      ``D. <choice>``, ``Answer:``, whichever formulation scores it, so the answer
      texts are tested too and a copy of the standard MMLU prompt is found even when
      its question is shorter than the n-gram.
    * ``evalkit_general_text``: each document of the selected ``genres`` (the first
      ``limit`` of them, as lm-eval scores them), by its corpus id.
    * ``evalkit_ifeval``: each prompt (the first ``limit``), by its key.
    * ``evalkit_continuation``: each item's context and its four choices (the first
      ``limit``), by its id.
    * Any other task: None (an lm-eval task of your own; its items are not read here).

    Extending it: a bundled task whose data evalkit ships adds one branch here that
    returns its items the same way (a language-modelling corpus: each document's text;
    an instruction-following set: each prompt), keyed by the ids its results use.
    Nothing else changes: the ``contamination`` stage asks this function for every
    benchmark of the suite.

    Args:
        spec: the suite's benchmark entry.
        base_dir: the suite file's directory (for tasks with files of their own).

    Raises:
        BenchmarkError: the benchmark's data is missing or malformed.
    """
    del base_dir  # no bundled task reads files relative to the suite yet
    if spec.is_mmlu:
        questions = select_items(load_mmlu(), spec.subjects, spec.per_subject_limit)
        return [(q.id, question_prompt(q, "letter")) for q in questions]
    if spec.is_general_text:
        documents = select_documents(load_corpus(), spec.genres)
        return [(d.id, d.text) for d in documents[:spec.limit]]
    if spec.is_ifeval:
        return [(str(p.key), p.prompt) for p in load_prompts()[:spec.limit]]
    if spec.is_continuation:
        return [(item.id, item.text()) for item in load_items()[:spec.limit]]
    return None


@dataclass(frozen=True)
class BenchmarkTask:
    """A spec made ready for lm-eval.

    Attributes:
        spec: the suite entry.
        task_name: the lm-eval task (or group) name to evaluate.
        include_path: a task directory for ``TaskManager`` (None: built-in tasks only).
        include_defaults: whether lm-eval's built-in tasks must be indexed too.
        metric: the per-item metric that is an item's value (``acc``, ``acc_norm`` ...),
            or None to take the task's first reported metric.
        num_fewshot: examples lm-eval must add itself (MMLU renders its own: 0 here).
        formulation: ``letter``/``cloze`` for MMLU, None otherwise.
        fewshot_source: where examples came from, as recorded in results.
        item_fields: the document fields that are an item's (id, group) for a bundled
            task (``id``/``subject`` for MMLU, ``id``/``genre`` for general text); None:
            items are ``<subtask>/<doc_id>``, grouped by subtask.
        kind: what an item's value is, when the task knows (``binary`` for MMLU's
            correctness, ``continuous`` for bits per byte); None: judged by the values.
        chat_template: whether lm-eval renders each prompt through the candidate's chat
            template (``apply_chat_template``), as for a chat model's generative task.
        generates: whether the task generates text (``generate_until``) rather than
            scoring log-likelihoods: known for the bundled tasks (ifeval), False otherwise.
    """

    spec: BenchmarkSpec
    task_name: str
    include_path: Path | None
    include_defaults: bool
    metric: str | None
    num_fewshot: int | None
    formulation: str | None
    fewshot_source: str | None
    item_fields: tuple[str, str] | None = None
    kind: str | None = None
    chat_template: bool = False
    generates: bool = False


@dataclass
class SubjectScore:
    """Accuracy on one subject (or subtask), as measured.

    Its record in a run is :class:`evalkit.benchmarks.spec.SubjectResult`, built from
    it by the benchmarks stage.
    """

    acc: float
    stderr: float
    n: int


@dataclass
class BenchmarkOutcome:
    """What one candidate scored on one benchmark.

    Attributes:
        acc: lm-eval's aggregate of the item metric over all items.
        stderr: its standard error.
        metric: the lm-eval metric (``acc`` or ``acc_norm`` ...).
        items: item id (``<subject>/<index>``) -> 1.0 correct / 0.0 wrong.
        subjects: per-subject scores.
        seconds: wall time of the evaluation.
        higher_is_better: the metric's direction, as lm-eval's task declares it.
        lm_eval_scores: lm-eval's own aggregates of every metric the task reports
            (``bits_per_byte``, ``word_perplexity`` ...), where they are not ``acc``'s.
    """

    acc: float
    stderr: float
    metric: str
    items: dict[str, float]
    subjects: dict[str, SubjectScore] = field(default_factory=dict)
    seconds: float = 0.0
    higher_is_better: bool = True
    lm_eval_scores: dict[str, float] = field(default_factory=dict)


def mean_stderr(values: Sequence[float]) -> float:
    """Return the standard error of a mean (sample standard deviation / sqrt(n)); 0 when n < 2."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(variance / n)


def subject_scores(by_subject: dict[str, list[float]]) -> dict[str, SubjectScore]:
    """Return subject -> its score (mean, standard error, count) over its items' values, by subject name."""
    return {
        subject: SubjectScore(acc=sum(values) / len(values), stderr=mean_stderr(values), n=len(values))
        for subject, values in sorted(by_subject.items())
    }


def prepare_benchmark(spec: BenchmarkSpec, base_dir: Path) -> BenchmarkTask:
    """Make a spec ready for lm-eval: write MMLU's task files, or check that a task exists.

    Args:
        spec: the suite entry.
        base_dir: the suite's directory, for ``include_path``.

    Raises:
        BenchmarkError: MMLU's data is missing, or the task is unknown (the message says
            what is available).
    """
    if spec.is_mmlu:
        prepared = prepare_mmlu_task(spec)
        formulation = spec.resolved_formulation
        assert formulation is not None
        return BenchmarkTask(
            spec=spec,
            task_name=prepared.task_name,
            include_path=prepared.include_path,
            include_defaults=False,
            metric=metric_for(formulation),
            num_fewshot=0,
            formulation=formulation,
            fewshot_source=FEWSHOT_SOURCE if spec.num_fewshot else None,
            item_fields=("id", "subject"),
            kind="binary",
        )
    if spec.is_general_text:
        text = prepare_general_text_task(spec.metric, spec.genres)
        return BenchmarkTask(
            spec=spec, task_name=text.task_name, include_path=text.include_path, include_defaults=False,
            metric=GENERAL_TEXT_ITEM_METRIC, num_fewshot=None, formulation=None, fewshot_source=None,
            item_fields=("id", "genre"), kind="continuous",
        )
    if spec.is_ifeval:
        prompts = prepare_ifeval_task(spec.metric, max_gen_toks=spec.max_gen_toks or IFEVAL_MAX_GEN_TOKS)
        return BenchmarkTask(
            spec=spec, task_name=prompts.task_name, include_path=prompts.include_path, include_defaults=False,
            metric=IFEVAL_ITEM_METRIC, num_fewshot=None, formulation=None, fewshot_source=None,
            item_fields=("key", "group"), kind="binary", chat_template=True, generates=True,
        )
    if spec.is_continuation:
        continuation = prepare_continuation_task(spec.metric)
        return BenchmarkTask(
            spec=spec, task_name=continuation.task_name, include_path=continuation.include_path,
            include_defaults=False, metric=CONTINUATION_ITEM_METRIC, num_fewshot=None, formulation=None,
            fewshot_source=None, item_fields=("id", "genre"), kind="binary",
        )
    include = None
    if spec.include_path is not None:
        include = Path(spec.include_path).expanduser()
        include = include if include.is_absolute() else (base_dir / include).resolve()
        if not include.is_dir():
            raise BenchmarkError(f"benchmark '{spec.task}': include_path {include} is not a directory")
    # The user's own directory alone is quick to index; lm-eval's ~15k built-in tasks
    # take seconds, so they are indexed only when the task is not the user's.
    own = include is not None and spec.task in lm_eval_task_names(include, include_defaults=False)
    known = [] if own else lm_eval_task_names(include, include_defaults=True)
    if not own and spec.task not in known:
        # Bundled tasks first, matched without their prefix: 'mmlu_mni' means evalkit_mmlu_mini.
        bundled = {name.removeprefix("evalkit_"): name for name in MMLU_TASKS}
        close = [bundled[name] for name in difflib.get_close_matches(spec.task.removeprefix("evalkit_"), bundled)]
        lm_eval_close = [name for name in difflib.get_close_matches(spec.task, known, n=5) if name not in close]
        close += lm_eval_close[:5 - len(close)]
        hint = f"; did you mean {', '.join(close)}" if close else ""
        raise BenchmarkError(
            f"unknown benchmark task '{spec.task}'{hint}. Available: {', '.join(MMLU_TASKS)} "
            f"(bundled MMLU), {GENERAL_TEXT_TASK} (bundled English text, bits per byte), "
            f"{IFEVAL_TASK} (bundled instruction following), "
            f"{CONTINUATION_TASK} (bundled passages, the real continuation among four), "
            f"or any of lm-eval's {len(known)} tasks that run offline, "
            "or your own task YAMLs via include_path (list them with `lm_eval ls tasks`)"
        )
    return BenchmarkTask(
        spec=spec,
        task_name=spec.task,
        include_path=include,
        include_defaults=not own,
        metric=spec.lm_eval_metric,
        num_fewshot=spec.num_fewshot or None,
        formulation=None,
        fewshot_source=None,
    )


def lm_eval_task_names(include_path: Path | None, include_defaults: bool = True) -> list[str]:
    """Return every task, group and tag name lm-eval knows in ``include_path`` (and built in)."""
    from lm_eval.tasks import TaskManager

    with quiet_lm_eval():
        manager = TaskManager(
            include_path=str(include_path) if include_path else None, include_defaults=include_defaults
        )
    return list(manager.all_tasks)


@contextlib.contextmanager
def quiet_lm_eval() -> Iterator[None]:
    """Silence lm-eval's INFO logging and its progress bars; evalkit reports progress itself."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    previous = os.environ.get("TQDM_DISABLE")
    logger.setLevel(logging.ERROR)
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        logger.setLevel(level)
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def evaluate_benchmark(task: BenchmarkTask, lm: Any) -> BenchmarkOutcome:
    """Run one benchmark on one lm-eval model through ``simple_evaluate``.

    Args:
        task: from :func:`prepare_benchmark`.
        lm: an ``lm_eval.api.model.LM`` instance (evalkit's, or any other).

    Raises:
        BenchmarkError: lm-eval failed to load the task or its data.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    started = time.perf_counter()
    with quiet_lm_eval():
        manager = TaskManager(
            include_path=str(task.include_path) if task.include_path else None,
            include_defaults=task.include_defaults,
        )
        try:
            output = simple_evaluate(
                model=lm,
                tasks=[task.task_name],
                num_fewshot=task.num_fewshot,
                limit=task.spec.limit,
                apply_chat_template=task.chat_template,
                task_manager=manager,
                log_samples=True,
                bootstrap_iters=1000,
            )
        except (FileNotFoundError, ConnectionError, OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(
                f"lm-eval could not run task '{task.spec.task}': {type(exc).__name__}: {exc}. "
                "Tasks whose data lives on the Hugging Face hub need it cached for offline use"
            ) from None
    if output is None:
        raise BenchmarkError(f"lm-eval returned no results for task '{task.spec.task}'")
    seconds = time.perf_counter() - started
    return collect_outcome(task, output, seconds)


def collect_outcome(task: BenchmarkTask, output: dict[str, Any], seconds: float) -> BenchmarkOutcome:
    """Turn ``simple_evaluate``'s output into a :class:`BenchmarkOutcome`.

    A bundled task's items are keyed and grouped by its ``item_fields`` (MMLU: question
    id and subject; general text: document id and genre); other tasks' items are keyed
    ``<subtask>/<doc_id>`` and grouped by subtask. A value lm-eval logs as a
    ``(log-likelihood, weight)`` pair becomes the document's own figure (:func:`item_value`);
    the overall score of such a metric is then the mean over documents, the figure the
    paired comparison compares, and lm-eval's corpus-level aggregates go to
    ``lm_eval_scores``.
    """
    samples: dict[str, list[dict[str, Any]]] = output["samples"]
    metric = task.metric or _first_metric(samples)
    items: dict[str, float] = {}
    by_subject: dict[str, list[float]] = {}
    pairs = False
    for subtask, records in samples.items():
        for record in records:
            if metric not in record:
                reported = [m for m in record.get("metrics", [])]
                raise BenchmarkError(
                    f"task '{task.spec.task}' reports no per-item '{metric}'; set 'metric:' to one of "
                    f"{', '.join(reported)}"
                )
            doc = record["doc"]
            if task.item_fields is not None:
                item_id, subject = str(doc[task.item_fields[0]]), str(doc[task.item_fields[1]])
            else:
                item_id, subject = f"{subtask}/{record['doc_id']}", subtask
            pairs = pairs or isinstance(record[metric], list | tuple)
            value = item_value(metric, record[metric])
            items[item_id] = value
            by_subject.setdefault(subject, []).append(value)
    values = list(items.values())
    if pairs:  # lm-eval aggregates over the corpus; the compared figure is the mean over documents
        if not values:
            raise BenchmarkError(f"task '{task.task_name}' produced no items")
        acc, stderr = sum(values) / len(values), mean_stderr(values)
    else:
        acc, stderr = _aggregate(output["results"], task.task_name, metric, values)
    return BenchmarkOutcome(acc=acc, stderr=stderr, metric=metric, items=items, subjects=subject_scores(by_subject),
                            seconds=seconds, higher_is_better=_direction(output, task.task_name, metric),
                            lm_eval_scores=_lm_eval_scores(output["results"], task.task_name)
                            if pairs or task.spec.is_ifeval or task.spec.is_continuation else {})


def item_value(metric: str, logged: Any) -> float:
    """Return one item's value from what lm-eval logged for it.

    A number is the value. A ``(log-likelihood, weight)`` pair (a rolling
    log-likelihood's perplexity metrics; weight = the document's words or UTF-8 bytes) is
    the metric over that document alone, as lm-eval aggregates it over a corpus:
    ``bits_per_byte`` = -ll / (bytes * ln 2), ``*perplexity`` = exp(-ll / weight).

    Raises:
        BenchmarkError: a pair of another metric, or a value that is not a number.
    """
    if isinstance(logged, list | tuple):
        if len(logged) != 2 or not float(logged[1]) > 0:
            raise BenchmarkError(f"lm-eval logged {metric} as {logged!r}, not a (log-likelihood, weight) pair")
        loglikelihood, weight = float(logged[0]), float(logged[1])
        if metric == "bits_per_byte":
            return -loglikelihood / weight / math.log(2)
        if metric.endswith("perplexity"):
            return math.exp(-loglikelihood / weight)
        raise BenchmarkError(f"lm-eval logged {metric} as a pair; evalkit knows per-item pairs of "
                             "bits_per_byte and *perplexity only: pick one with 'lm_eval_metric'")
    try:
        return float(logged)
    except (TypeError, ValueError):
        raise BenchmarkError(f"lm-eval logged {metric} as {logged!r}, not a number") from None


def _direction(output: Mapping[str, Any], task_name: str, metric: str) -> bool:
    # lm-eval's declared direction of the metric (True when it does not say).
    declared = output.get("higher_is_better", {}).get(task_name, {}).get(metric)
    return bool(declared) if isinstance(declared, bool) else True


def _lm_eval_scores(results: Mapping[str, Any], task_name: str) -> dict[str, float]:
    # Every aggregate lm-eval reports for the task, without its stderr entries.
    return {
        key.split(",")[0]: float(value)
        for key, value in results.get(task_name, {}).items()
        if "," in key and "_stderr" not in key and isinstance(value, int | float) and not isinstance(value, bool)
    }


def _first_metric(samples: dict[str, list[dict[str, Any]]]) -> str:
    for records in samples.values():
        for record in records:
            metrics = list(record.get("metrics", []))
            if metrics:
                return "acc" if "acc" in metrics else str(metrics[0])
    raise BenchmarkError("lm-eval reported no per-item metrics")


def _aggregate(results: dict[str, Any], task_name: str, metric: str, values: list[float]) -> tuple[float, float]:
    # lm-eval's own aggregate when it has one for the task (or group); otherwise the
    # mean over items (a group without an aggregate metric list).
    entry = results.get(task_name, {})
    value = entry.get(f"{metric},none")
    stderr = entry.get(f"{metric}_stderr,none")
    if isinstance(value, (int, float)):
        return float(value), float(stderr) if isinstance(stderr, (int, float)) else mean_stderr(values)
    if not values:
        raise BenchmarkError(f"task '{task_name}' produced no items")
    return sum(values) / len(values), mean_stderr(values)


# The benchmark results cache: one SQLite file, ``$EVALKIT_HOME/benchmarks.sqlite``.
#
# A benchmark's outcome on one model is keyed by everything that decides it (see
# :func:`benchmark_key`): the base model's and the adapter's fingerprints, the scoring
# dtype, device and scorer (evalkit's HF or vLLM lm-eval model), the lm-eval task (for
# the bundled MMLU its name already carries a digest of the selected questions, their
# formulation and few-shot prefixes; for a task of your own, a digest of its
# ``include_path`` files), the spec fields that change what is
# scored, and the evalkit and lm-eval versions. An unchanged re-run reads the outcome back
# and scores nothing; any change to one of those parts misses the cache and scores afresh.
#
# It sits beside the judgment cache (the same key -> JSON store, in its own file) and,
# like it, apart from the run store: a cache can be deleted at any time.

CACHE_FILE = "benchmarks.sqlite"
_KEY_VERSION = 1


def default_cache_path() -> Path:
    """Return the cache file's default place: ``benchmarks.sqlite`` in evalkit's cache directory."""
    return cache_home() / CACHE_FILE


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def task_files_digest(include_path: Path | None) -> str | None:
    """Return a SHA-256 over every file under a task directory (names and bytes), or None."""
    if include_path is None or not include_path.is_dir():
        return None
    files = sorted(p for p in include_path.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    return files_digest(include_path, [str(path.relative_to(include_path)) for path in files])


def benchmark_key(
    task: BenchmarkTask, model_fingerprint: str, adapter_hash: str | None, dtype: str, device: str,
    scorer: str = "evalkit-hf",
) -> str:
    """Return the cache key of one benchmark on one model variant (see the module docstring).

    ``batch_size`` is left out, as in the generation cache: it changes throughput, not
    which answer scores highest.
    """
    spec = task.spec
    # The bundled MMLU task's name is a digest of its data; its files need not be read.
    files = None if task.formulation is not None else task_files_digest(task.include_path)
    payload = {
        "key_version": _KEY_VERSION,
        "model": model_fingerprint,
        "adapter": adapter_hash,
        "dtype": dtype,
        "device": device,
        "scorer": scorer,  # the two scorers agree to float precision, not bit for bit
        "task": task.task_name,
        "task_files": files,
        "include_defaults": task.include_defaults,
        "metric": task.metric,
        "formulation": task.formulation,
        "num_fewshot": spec.num_fewshot,
        "lm_num_fewshot": task.num_fewshot,
        "limit": spec.limit,
        "subjects": spec.subjects,
        "limit_per_subject": spec.limit_per_subject,
        "evalkit": evalkit_version(),
        "lm_eval": _package_version("lm_eval"),
    }
    return json_digest(payload)


def benchmark_cache(path: Path | None = None) -> JsonCache[BenchmarkOutcome]:
    """Open the benchmark cache: outcomes by :func:`benchmark_key`, in :func:`default_cache_path` (or ``path``).

    Raises:
        StoreError: the file cannot be opened.
    """
    return JsonCache(BenchmarkOutcome, path or default_cache_path(), "benchmark cache")
