"""The texts a benchmark shows a model, item by item: what contamination is measured on.

:func:`benchmark_documents` is the one place that knows how to list a benchmark's items
as text. It reads evalkit's own data for evalkit's bundled tasks and imports nothing
heavy (no lm-eval, no torch).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.benchmarks.continuation_task import load_items
from evalkit.benchmarks.general_text_task import load_corpus, select_documents
from evalkit.benchmarks.ifeval_task import load_prompts
from evalkit.benchmarks.mmlu_data import load_mmlu, select_items
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.benchmarks.tasks import question_prompt

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
