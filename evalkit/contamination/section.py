"""The ``contamination:`` suite block, and the section: how much of each item set a candidate trained on.

Written by the ``contamination`` run stage (:mod:`evalkit.contamination.stage`), read by the
report's contamination view, the capability view's flag and the CLI. Per candidate: where
its training data came from (or why it is unknown: a base model's pretraining data is
not "clean", it is unknown), and per benchmark (keyed by the benchmark's metric name,
as the ``benchmarks`` section is) and for the eval set, how many items share a word
n-gram with that data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evalkit.contamination.ngrams import DEFAULT_MIN_WORDS, DEFAULT_N, OverlapExample
from evalkit.files.yaml_source import StrictModel
from evalkit.record.sections import SectionModel

__all__ = [
    "CandidateContamination", "ContaminationSection", "ContaminationSpec",
    "SetOverlap", "TrainingDataSource", "TrainingSourceKind"
]



TrainingSourceKind = Literal["train_config", "manifest", "suite_train_path"]
"""Where a candidate's training data was found: its ``train:`` config's data file, the
manifest beside its weights, or (an adapter that records neither) the suite's
``dataset.train_path``, assumed."""


class TrainingDataSource(SectionModel):
    """A candidate's training data: the file and its hash, or why it is unknown."""

    status: Literal["known", "unknown"]
    source: TrainingSourceKind | None = None
    path: str | None = None
    sha256: str | None = None
    reason: str = ""
    """Why the data is unknown (a base model, a manifest whose data is gone), or how it was found."""


class SetOverlap(SectionModel):
    """One item set (a benchmark or the eval set) against one candidate's training data."""

    items: int
    contaminated: int
    fraction: float
    too_short: int = 0
    """Items too short to test (fewer than ``min_words`` words): neither clean nor contaminated."""
    examples: list[OverlapExample] = Field(default_factory=list)
    cached: bool = False
    """The figures came from the contamination cache (same data, items and n)."""


class CandidateContamination(SectionModel):
    """One candidate's training data and its overlap with each item set."""

    training: TrainingDataSource
    benchmarks: dict[str, SetOverlap] = Field(default_factory=dict)
    """Benchmark metric name -> overlap (empty when the training data is unknown)."""
    eval_set: SetOverlap | None = None
    """The suite's eval items, compared on the field the leakage check compares."""


class ContaminationSection(SectionModel):
    """The whole section: the test's settings and every candidate that ran."""

    n: int
    min_words: int
    candidates: dict[str, CandidateContamination] = Field(default_factory=dict)
    unlisted: dict[str, str] = Field(default_factory=dict)
    """Benchmark metric name -> why its items could not be listed (not tested for anyone)."""

    def contaminated(self, candidate: str) -> dict[str, SetOverlap]:
        """Return the benchmarks on which ``candidate`` trained on at least one item, by metric name."""
        entry = self.candidates.get(candidate)
        if entry is None:
            return {}
        return {name: overlap for name, overlap in entry.benchmarks.items() if overlap.contaminated}


# What a suite says about contamination: the ``contamination:`` block (all optional).
class ContaminationSpec(StrictModel):
    """How the ``contamination`` stage compares training data with benchmark and eval items."""

    enabled: bool = True
    """Set false to skip the stage (the run then records no contamination section)."""
    n: int = Field(default=DEFAULT_N, ge=3, le=50)
    """N-gram length in words: an item is contaminated when it shares one with the training data."""
    min_words: int = Field(default=DEFAULT_MIN_WORDS, ge=1, le=50)
    """Items with fewer words than ``n`` are tested on their whole text if they have at least
    this many words; shorter ones are reported as too short to test."""
