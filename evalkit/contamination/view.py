"""Contamination: how much of each benchmark and of the eval set each candidate trained on.

Reads the ``contamination`` section through its schema
(:class:`evalkit.contamination.ngrams.ContaminationSection`). :func:`contamination_view`
is the report's section; :func:`benchmark_flags` is the short text the capability view
shows beside a benchmark's score (and the CLI beside its table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalkit.benchmarks.spec import BenchmarksSection
from evalkit.contamination.ngrams import ContaminationSection, SetOverlap, TrainingDataSource
from evalkit.record.results import RunResult

__all__ = ["BenchmarkFlag", "ContaminationRow", "ContaminationView", "benchmark_flags", "contamination_section",
           "contamination_view", "describe_overlap"]

EVAL_SET = "eval set"
"""How the eval set is named in the view's rows."""


@dataclass
class ContaminationRow:
    """One candidate against one item set."""

    candidate: str
    item_set: str
    kind: str
    """``benchmark`` or ``eval set``."""
    found: str
    """``3 of 228 (1.3%)``."""
    contaminated: bool
    too_short: int
    examples: list[tuple[str, str]]
    """(item id, the shared n-gram)."""
    cached: bool


@dataclass(frozen=True)
class BenchmarkFlag:
    """What is shown beside one candidate's score on one benchmark."""

    text: str
    contaminated: bool


@dataclass
class ContaminationView:
    """The report's contamination section."""

    n: int
    min_words: int
    rows: list[ContaminationRow] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    """(candidate, where its training data came from, or why it is unknown)."""
    unlisted: list[tuple[str, str]] = field(default_factory=list)
    """(benchmark, why its items were not tested)."""


def contamination_section(run: RunResult) -> ContaminationSection | None:
    """Return the run's contamination section, typed; None when the run has none.

    Raises:
        DataError: the section does not have its schema's shape.
    """
    section: ContaminationSection | None = run.section("contamination")
    return section


def describe_overlap(overlap: SetOverlap) -> str:
    """Return ``3 of 228 (1.3%)``."""
    return f"{overlap.contaminated} of {overlap.items} ({overlap.fraction:.1%})"


def benchmark_flags(run: RunResult) -> dict[tuple[str, str], BenchmarkFlag]:
    """Return (candidate, benchmark metric) -> what to show beside the score.

    ``trained on 3 of 228 items (1.3%)`` where the candidate's training data shares an
    n-gram with some of the benchmark's items, ``none found`` where it shares none, and
    ``training data unknown`` where the candidate's training data is not known (never
    shown as clean). Empty when the run has no contamination section.
    """
    section = contamination_section(run)
    if section is None:
        return {}
    flags: dict[tuple[str, str], BenchmarkFlag] = {}
    for candidate, entry in section.candidates.items():
        if entry.training.status != "known":
            benchmarks: BenchmarksSection = run.section("benchmarks") or {}
            for benchmark in benchmarks.get(candidate, {}):
                flags[(candidate, benchmark)] = BenchmarkFlag("training data unknown", False)
            continue
        for benchmark, overlap in entry.benchmarks.items():
            flags[(candidate, benchmark)] = (
                BenchmarkFlag(f"trained on {overlap.contaminated} of {overlap.items} items ({overlap.fraction:.1%})",
                              True)
                if overlap.contaminated else BenchmarkFlag(f"none found ({section.n}-gram)", False))
    return flags


def _source(training: TrainingDataSource) -> str:
    where = {"train_config": "its train config's data", "manifest": "the data its manifest records",
             "suite_train_path": "the suite's dataset.train_path"}.get(training.source or "", "")
    text = f"{where}: {training.path}" if training.path else "unknown"
    if training.replay_path:
        text += f", with the replay text {training.replay_path}"
    return f"{text} ({training.reason})" if training.reason else text


def contamination_view(run: RunResult) -> ContaminationView | None:
    """Return the report's contamination section; None when the run has none.

    Raises:
        DataError: the section does not have its schema's shape.
    """
    section = contamination_section(run)
    if section is None:
        return None
    view = ContaminationView(n=section.n, min_words=section.min_words,
                             unlisted=sorted(section.unlisted.items()))
    for candidate, entry in section.candidates.items():
        training = entry.training
        view.sources.append((candidate, _source(training)))
        sets: list[tuple[str, str, SetOverlap]] = [(name, "benchmark", o) for name, o in entry.benchmarks.items()]
        if entry.eval_set is not None:
            sets.append((EVAL_SET, "eval set", entry.eval_set))
        for name, kind, overlap in sets:
            view.rows.append(ContaminationRow(
                candidate=candidate, item_set=name, kind=kind, found=describe_overlap(overlap),
                contaminated=overlap.contaminated > 0, too_short=overlap.too_short,
                examples=[(e.item_id, e.ngram) for e in overlap.examples], cached=overlap.cached,
            ))
    return view
