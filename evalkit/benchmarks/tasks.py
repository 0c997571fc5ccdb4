r"""lm-eval task definitions over evalkit's local MMLU data, generated per benchmark spec.

For each spec a directory under ``$EVALKIT_HOME/benchmarks/tasks/`` holds the selected
questions (``data.jsonl``) and one task YAML that lm-eval loads with
``TaskManager(include_path=...)``, written once and reused by
:func:`~evalkit.benchmarks.probes.write_task`, as every bundled task is.

Formulations:

* ``letter`` is lm-eval's standard MMLU task: the subject line
  ``The following are multiple choice questions (with answers) about <subject>.``,
  then ``<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:``, choices ``A``-``D``,
  metric ``acc``.
* ``cloze`` is lm-eval's ``mmlu_continuation`` prompt, ``Question: <question>\nAnswer:``,
  scoring each answer text, metric ``acc_norm`` (log-likelihood per byte), the
  formulation behind published small-model figures.

k-shot: lm-eval's own sampler draws from a whole split, not from one subject, so the
examples are rendered here into each question's ``prefix`` field: ``k`` questions of
the same subject in a fixed order of their own, never the evaluated question, in the
format lm-eval uses for shots (``<question prompt> <answer>\n\n``). This differs from
the standard 5-shot prompt (drawn from the dev split, which the bundled data lacks), so
results say ``fewshot_source: same_subject_test``.

Also in this module:

* The texts a benchmark shows a model, item by item: what contamination is measured on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from evalkit.benchmarks.ifeval_task import load_prompts
from evalkit.benchmarks.mmlu_data import MmluQuestion, load_mmlu, select_items
from evalkit.benchmarks.probes import (
    PreparedTask,
    json_task_config,
    load_corpus,
    load_items,
    select_documents,
    write_task,
)
from evalkit.benchmarks.spec import BenchmarkSpec, Formulation

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
