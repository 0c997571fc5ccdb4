"""Contamination (items whose text occurs in a model's training data): its measure, suite block and section.

The measure follows lm-eval's decontamination (``lm_eval/decontamination/janitor.py``,
after GPT-3's appendix C): normalise both sides, split into words, and call an item
*contaminated* when one of its word 13-grams also occurs in the training data. Three
things differ, each on purpose:

* Normalisation is :func:`evalkit.data.items.normalize_text`, the one the
  leakage check uses: lowercase (any script, not ASCII only), apostrophes deleted, every
  other punctuation mark a word break. The janitor deletes punctuation, which glues
  ``end.Next`` into one word; a break keeps both words comparable.
* An item shorter than ``n`` words has no ``n``-gram, so the janitor can never flag it.
  Here an item of at least ``min_words`` words (default 8, GPT-3's floor) is tested on
  its whole word sequence instead; shorter items are counted as too short to test, not
  as clean.
* Training records are read field by field (every string in the JSON record is its own
  text), so no n-gram spans two fields that were never adjacent in a training sequence.

The training side is indexed (a set of its n-grams), the items are streamed against it:
fine-tuning data is small next to a benchmark. :func:`find_overlap` is pure; caching by
content hash is the caller's (:mod:`evalkit.contamination.stage`).

Also here:

* The ``contamination:`` suite block, and the section: how much of each item set a candidate trained on
  (:class:`ContaminationSpec`, :class:`ContaminationSection`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalkit.data.items import load_items, normalize_text
from evalkit.errors import DataError
from evalkit.files.yaml_source import StrictModel, json_objects
from evalkit.record.sections import SectionModel

__all__ = [
    "DEFAULT_MIN_WORDS",
    "DEFAULT_N",
    "CandidateContamination",
    "ContaminationSection",
    "ContaminationSpec",
    "ItemText",
    "OverlapExample",
    "OverlapResult",
    "SetOverlap",
    "TrainingDataSource",
    "TrainingNgrams",
    "TrainingSourceKind",
    "describe",
    "find_overlap",
    "record_texts",
    "texts_digest",
    "training_texts",
]


DEFAULT_N = 13
"""lm-eval's (and GPT-3's) n-gram length."""
DEFAULT_MIN_WORDS = 8
"""Shortest item tested at all: shorter than ``n`` words, it is tested on its whole text."""
EXAMPLES = 5
"""Contaminated items named, with the n-gram they share, per item set."""

ItemText = tuple[str, str]
"""An item of a benchmark or eval set: (item id, the text a model is shown)."""


@dataclass(frozen=True)
class OverlapExample:
    """One contaminated item and one n-gram (normalised words) it shares with the training data."""

    item_id: str
    ngram: str


@dataclass
class OverlapResult:
    """How many items of a set share an n-gram with the training data.

    Attributes:
        n: the n-gram length in words.
        min_words: the shortest item tested.
        items: items in the set.
        contaminated: items sharing at least one n-gram (or, if short, their whole text).
        too_short: items with fewer than ``min(n, min_words)`` words: not tested.
        examples: the first contaminated items, in item order, with a shared n-gram.
    """

    n: int
    min_words: int
    items: int
    contaminated: int
    too_short: int
    examples: list[OverlapExample] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Contaminated items over all items (0.0 for an empty set)."""
        return self.contaminated / self.items if self.items else 0.0


def record_texts(value: Any) -> Iterator[str]:
    """Yield every string inside a JSON value (a training record), depth first, in order.

    A chat record's message contents, a preference pair's prompt, chosen and rejected
    answers, an SFT example's instruction, input and output: each is a text the model
    was trained on, and none is joined to the next.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from record_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from record_texts(item)


def training_texts(path: Path) -> Iterator[str]:
    """Yield every text of a training file (see :func:`record_texts`): JSONL streamed, or CSV as datasets are read.

    Raises:
        DataError: a line is not a JSON object (naming the file and line), or the file
            cannot be read.
    """
    if path.suffix.lower() == ".csv":  # a suite's train_path may be CSV, read as its items are
        for item in load_items(path):
            yield from record_texts(item.fields)
        return
    try:
        for _, record in json_objects(path, fix="fix the training data file"):
            yield from record_texts(record)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the training data ({exc}); check the path or re-save it as "
                        "UTF-8 JSONL") from None


def _grams(words: Sequence[str], n: int) -> Iterator[str]:
    return (" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


class TrainingNgrams:
    """The word n-grams of a training corpus, built once and tested against any number of item sets.

    Args:
        training: the training texts (streamed once; see :func:`training_texts`).
        n: n-gram length in words (13 as lm-eval).

    Raises:
        ValueError: ``n`` is smaller than 1.
    """

    def __init__(self, training: Iterable[str], n: int = DEFAULT_N) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        # The word sequences are kept for items shorter than n (matched on their whole text).
        self._texts = [words for words in (normalize_text(text).split() for text in training) if words]
        self._grams = {gram for words in self._texts for gram in _grams(words, n)}

    def overlap(self, items: Sequence[ItemText], min_words: int = DEFAULT_MIN_WORDS,
                examples: int = EXAMPLES) -> OverlapResult:
        """Count the items that share a word n-gram with the training texts (see the module docstring).

        Args:
            items: (id, text) of each benchmark or eval item.
            min_words: items with fewer words than this (and than ``n``) are not tested.
            examples: how many contaminated items to name.

        Raises:
            ValueError: ``min_words`` is smaller than 1.
        """
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words}")
        n = self.n
        floor = min(n, min_words)
        tokenised = [(item_id, normalize_text(text).split()) for item_id, text in items]
        short_hits = self._short_hits([words for _, words in tokenised], floor)
        contaminated = too_short = 0
        found: list[OverlapExample] = []
        for index, (item_id, words) in enumerate(tokenised):
            if len(words) < floor:
                too_short += 1
                continue
            if len(words) < n:
                hit = short_hits.get(index)
            else:
                hit = next((gram for gram in _grams(words, n) if gram in self._grams), None)
            if hit is None:
                continue
            contaminated += 1
            if len(found) < examples:
                found.append(OverlapExample(item_id, hit))
        return OverlapResult(n, min_words, len(items), contaminated, too_short, found)

    def _short_hits(self, items: Sequence[list[str]], floor: int) -> dict[int, str]:
        """Items of ``floor`` to ``n - 1`` words whose whole text occurs in a training text: index -> text."""
        short: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for index, words in enumerate(items):
            if floor <= len(words) < self.n:
                short[len(words)][" ".join(words)].append(index)
        hits: dict[int, str] = {}
        for words in self._texts if short else ():
            for length, wanted in short.items():
                for gram in _grams(words, length):
                    for index in wanted.get(gram, ()):
                        hits.setdefault(index, gram)
        return hits


def find_overlap(
    training: Iterable[str],
    items: Sequence[ItemText],
    n: int = DEFAULT_N,
    min_words: int = DEFAULT_MIN_WORDS,
    examples: int = EXAMPLES,
) -> OverlapResult:
    """Count the items that share a word n-gram with the training texts (one item set; see :class:`TrainingNgrams`).

    Raises:
        ValueError: ``n`` or ``min_words`` is smaller than 1.
    """
    return TrainingNgrams(training, n).overlap(items, min_words, examples)


def texts_digest(items: Sequence[ItemText]) -> str:
    """Return a SHA-256 over the items' ids and texts, in order (an item set's identity in cache keys).

    Each id and text is hashed as UTF-8 followed by a NUL byte (which neither contains in
    practice), so a different split of the same characters digests differently.
    """
    digest = hashlib.sha256()
    for item_id, text in items:
        digest.update(item_id.encode("utf-8", "surrogatepass") + b"\0" + text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def describe(result: OverlapResult) -> str:
    """Return ``3 of 570 items (0.5%) share a 13-gram`` (``, 2 too short to test`` when some were)."""
    short = f", {result.too_short} too short to test" if result.too_short else ""
    return (f"{result.contaminated} of {result.items} items ({result.fraction:.1%}) share a {result.n}-gram "
            f"with the training data{short}")


# The ``contamination:`` suite block, and the section: how much of each item set a candidate trained on.
#
# Written by the ``contamination`` run stage (:mod:`evalkit.contamination.stage`), read by the
# report's contamination view, the capability view's flag and the CLI. Per candidate: where
# its training data came from (or why it is unknown: a base model's pretraining data is
# not "clean", it is unknown), and per benchmark (keyed by the benchmark's metric name,
# as the ``benchmarks`` section is) and for the eval set, how many items share a word
# n-gram with that data.

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
    replay_path: str | None = None
    """General text mixed into the training (a train config's ``replay:``); tested with the data."""
    replay_sha256: str | None = None

    @property
    def files_digest(self) -> str | None:
        """The identity of everything trained on: the data's SHA-256, combined with the replay's when there is one."""
        if self.sha256 is None or self.replay_sha256 is None:
            return self.sha256
        return hashlib.sha256(f"{self.sha256}+{self.replay_sha256}".encode()).hexdigest()


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
