"""Load evaluation items from JSONL or CSV files, with errors that name the line; and find train/eval leaks.

:func:`load_items` reads a file's rows as :class:`Item` objects.

Also here:

* Train/eval leakage: eval items that repeat training items, exactly or nearly (:func:`check_leakage`,
  :func:`find_leaks`).
* Word n-gram near-duplicate detection between two text collections (:func:`find_near_duplicates`,
  :func:`ngram_overlap`, :func:`normalize_text`).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.files.yaml_source import json_objects, refuse_non_regular_file


@dataclass(frozen=True)
class Item:
    """One evaluation item.

    Attributes:
        id: stable id (the ``id_field`` value, or the 1-based line number).
        fields: the item's fields as read from the file.
        line: the line of the file the item came from.
    """

    id: str
    fields: dict[str, Any] = field(hash=False)
    line: int = 0


def load_items(path: Path, id_field: str | None = None, limit: int | None = None) -> list[Item]:
    """Read items from a ``.jsonl`` or ``.csv`` file.

    Args:
        path: the data file.
        id_field: field that holds each item's id; default the line number.
        limit: read at most this many items.

    Raises:
        DataError: the file is missing, a line is not a JSON object, an id is missing
            or repeated; the message names the file and line.
    """
    refuse_non_regular_file(path, "dataset file")
    if not path.is_file():
        raise DataError(f"{path}: dataset file not found; check dataset.path in the suite")
    try:
        rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (undecodable byte at offset {exc.start}); "
                        "save the dataset as UTF-8 JSONL or CSV") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, fields in rows:
        if id_field is None:
            item_id = str(line)
        else:
            if id_field not in fields:
                raise DataError(
                    f"{path}:{line}: id field '{id_field}' is missing; add it or unset dataset.id_field"
                )
            item_id = str(fields[id_field])
        if item_id in seen:
            raise DataError(
                f"{path}:{line}: id '{item_id}' repeats line {seen[item_id]}; ids must be unique"
            )
        seen[item_id] = line
        items.append(Item(id=item_id, fields=fields, line=line))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise DataError(f"{path}: no items; the dataset file is empty")
    return items


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(json_objects(path))


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows: list[tuple[int, dict[str, Any]]] = []
        for record in reader:
            if None in record:
                raise DataError(f"{path}:{reader.line_num}: more values than header columns")
            rows.append((reader.line_num, dict(record)))
    return rows


# Train/eval leakage: eval items that repeat training items, exactly or nearly.
#
# An eval input that is in the training data exactly or as a near duplicate (word-trigram
# overlap, below) makes the evaluation measure memory,
# not skill, so training stops with the list of pairs (``evalkit data leakage TRAIN EVAL``
# lists every pair; :mod:`evalkit.data.lint` checks the training file itself).
#
# Also in this module:
#
# * Word n-gram near-duplicate detection between two text collections.

# Word n-gram near-duplicate detection between two text collections.
#
# Used by the classifier-data split (so no eval message has a near twin in train)
# and by the ``evalkit data leakage TRAIN EVAL`` command.
#
# Similarity is the *overlap coefficient* of word trigram sets,
# ``|A ∩ B| / min(|A|, |B|)``. Dividing by the smaller set (not the union, as
# Jaccard does) means a short message that is fully contained in a longer one
# (the same complaint plus a greeting, a sign-off or a context sentence) still
# scores close to 1.0, which is exactly the leak we care about.
#
# Threshold choice (``DEFAULT_THRESHOLD = 0.5``), measured on the synthetic
# classifier data (800 messages, every pair):
#
# * Re-wrapping one message with a different greeting and sign-off (everything
#   else equal) scores >= 0.5 in 99.9% of cases (median 0.95); only the very
#   shortest cores ("The box arrived empty.") fall to about 0.4.
# * Messages built from *different* situation phrasings score 0.0 at the median,
#   0.19 at the 99th and 0.35 at the 99.9th percentile; about 1 pair in 10,000
#   reaches 0.5, and
#   those are two-sentence messages that share a whole filler sentence, i.e.
#   half of their text is literally the same.
# * Same phrasing but a different context sentence, tone phrase or deadline
#   clause: about half reach 0.5. These share the situation, not the message.
#
# 0.5 therefore means "at least half of the shorter text's trigrams re-occur in
# the other one": a pair is flagged when its core really is the same, while
# shared pleasantries alone (a common greeting, tone phrase or sign-off) do not
# reach it. Lower values (0.4, 0.3) flag 6x and 25x more unrelated pairs that
# merely share boilerplate; higher ones (0.6-0.7) flag fewer of those but also
# let through more same-situation pairs, and for a leakage check a rare false
# alarm is cheaper than a missed twin.

DEFAULT_THRESHOLD = 0.5
DEFAULT_NGRAM = 3

# Apostrophes are deleted (so "can't" and "cant" agree); any other
# punctuation (and "_") is a word break.
_APOSTROPHES = re.compile(r"['\u2018\u2019`]")
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(_APOSTROPHES.sub("", text.lower()))


def normalize_text(text: str) -> str:
    """Normalise text for duplicate comparison.

    Lowercases, deletes apostrophes, turns other punctuation into spaces and
    collapses runs of whitespace.

    Args:
        text: Any string.

    Returns:
        The normalised string, words separated by single spaces, no leading or
        trailing whitespace.
    """
    return " ".join(_words(text))


def word_ngrams(text: str, n: int = DEFAULT_NGRAM) -> set[tuple[str, ...]]:
    """Return the set of word n-grams of the normalised text.

    A non-empty text with fewer than ``n`` words yields one shorter tuple (all
    its words), so very short messages are still comparable with each other.

    Args:
        text: Any string; it is normalised with :func:`normalize_text`.
        n: N-gram length in words, at least 1.

    Returns:
        The set of n-gram tuples; empty for a text with no words.

    Raises:
        ValueError: If ``n`` is smaller than 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _ngrams_of(_words(text), n)


def _ngrams_of(words: list[str], n: int) -> set[tuple[str, ...]]:
    if not words:
        return set()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _overlap(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    smaller = min(len(a), len(b))
    if smaller == 0:
        return 0.0
    return len(a & b) / smaller


def ngram_overlap(a: str, b: str, n: int = DEFAULT_NGRAM) -> float:
    """Overlap coefficient of the word n-gram sets of two texts.

    Args:
        a: First text.
        b: Second text.
        n: N-gram length in words.

    Returns:
        ``|A ∩ B| / min(|A|, |B|)`` in [0, 1]; 0.0 when either text has no words.
    """
    return _overlap(word_ngrams(a, n), word_ngrams(b, n))


@dataclass(frozen=True)
class LeakPair:
    """One eval text that (nearly) duplicates one train text.

    Attributes:
        eval_index: Position of the text in the eval sequence.
        train_index: Position of the text in the train sequence.
        overlap: N-gram overlap coefficient (1.0 for exact duplicates).
        exact: True when both texts are identical after normalisation.
    """

    eval_index: int
    train_index: int
    overlap: float
    exact: bool


def _min_shared(size: int, threshold: float) -> int:
    """Fewest shared n-grams that let a set of ``size`` n-grams reach ``threshold``."""
    # The epsilon keeps e.g. 0.6 * 5 = 3.0000000000000004 from rounding up to 4.
    return max(1, math.ceil(threshold * size - 1e-9))


def find_near_duplicates(
    train_texts: Sequence[str],
    eval_texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    n: int = DEFAULT_NGRAM,
) -> list[LeakPair]:
    """Find every (eval, train) pair that is an exact or near duplicate.

    Candidates come from inverted indexes (n-gram -> train texts), never from
    comparing every pair, with *prefix filtering* to keep posting lists short:
    n-grams are ranked from rarest to most common in train, and a set of size
    ``m`` can only share ``ceil(threshold * m)`` n-grams with another set if it
    shares at least one of its ``m - ceil(threshold * m) + 1`` rarest ones. So
    a train text is a candidate when one of its rare "prefix" n-grams occurs in
    the eval text (covers pairs where the train text is the smaller set) or
    one of the eval text's prefix n-grams occurs in it (the eval text is the
    smaller set). Only candidates get an exact set intersection. The result is
    identical to comparing all pairs; 10,000 x 1,000 messages take well under
    a few seconds.

    Args:
        train_texts: Training texts.
        eval_texts: Evaluation texts.
        threshold: Minimum overlap coefficient (inclusive) for a near duplicate.
            See the module docstring for why 0.5 is the default.
        n: N-gram length in words.

    Returns:
        Pairs sorted by eval index, then by decreasing overlap (exact first on
        ties), then by train index. Exact duplicates (after
        :func:`normalize_text`) are reported with ``exact=True`` and
        ``overlap=1.0``; texts with no words are never matched.

    Raises:
        ValueError: If ``threshold`` is not in (0, 1] or ``n`` < 1.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")

    exact_index: dict[str, list[int]] = defaultdict(list)
    train_grams: list[set[tuple[str, ...]]] = []
    for i, text in enumerate(train_texts):
        words = _words(text)
        if words:
            exact_index[" ".join(words)].append(i)
        train_grams.append(_ngrams_of(words, n))
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for grams in train_grams:
        doc_freq.update(grams)

    def prefix(grams: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
        # Rarest first; ties broken by the n-gram itself so the order is total.
        ranked = sorted(grams, key=lambda g: (doc_freq.get(g, 0), g))
        return ranked[: len(grams) - _min_shared(len(grams), threshold) + 1]

    postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    prefix_postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, grams in enumerate(train_grams):
        for gram in grams:
            postings[gram].append(i)
        for gram in prefix(grams):
            prefix_postings[gram].append(i)

    pairs: list[LeakPair] = []
    for e, text in enumerate(eval_texts):
        words = _words(text)
        if not words:
            continue
        exact_hits = set(exact_index.get(" ".join(words), ()))
        found = [LeakPair(e, t, 1.0, True) for t in sorted(exact_hits)]

        grams = _ngrams_of(words, n)
        candidates: set[int] = set()
        for gram in grams:
            candidates.update(prefix_postings.get(gram, ()))
        for gram in prefix(grams):
            candidates.update(postings.get(gram, ()))
        candidates -= exact_hits
        for t in candidates:
            overlap = _overlap(grams, train_grams[t])
            if overlap >= threshold:
                found.append(LeakPair(e, t, overlap, False))

        found.sort(key=lambda p: (-p.overlap, not p.exact, p.train_index))
        pairs.extend(found)
    return pairs


# Train/eval leakage: eval items that repeat training items, exactly or nearly.

# The error names this many pairs inline; `evalkit data leakage` lists them all.
_SHOWN = 8


@dataclass(frozen=True)
class Leak:
    """One eval item that is in the training data, exactly or nearly.

    Attributes:
        eval_line: the line of the eval file.
        train_line: the line of the training file.
        overlap: word-trigram overlap coefficient (1.0 for an exact duplicate).
        exact: identical after normalisation.
        eval_text: the compared eval text.
        train_text: the compared training text.
    """

    eval_line: int
    train_line: int
    overlap: float
    exact: bool
    eval_text: str
    train_text: str

    def describe(self) -> str:
        """Return ``eval line A ~ train line B (exact|overlap 0.83)``."""
        how = "exact" if self.exact else f"overlap {self.overlap:.2f}"
        return f"eval line {self.eval_line} ~ train line {self.train_line} ({how})"


def comparison_text(fields: dict[str, Any], field_name: str) -> str:
    """Return the text of an item compared for leakage.

    The named field when present; for preference pairs without it, the prompt (a string,
    or the last user message of a chat prompt).
    """
    value = fields.get(field_name)
    if value is None:
        value = fields.get("prompt")
        if isinstance(value, list):
            users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
            value = users[-1] if users else ""
    return value if isinstance(value, str) else json.dumps(value)


def find_leaks(
    train_items: Sequence[Item],
    eval_items: Sequence[Item],
    field_name: str = "input",
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Leak]:
    """Return every eval item whose text (nearly) repeats a training item's.

    Args:
        train_items: the training data.
        eval_items: the evaluation data.
        field_name: the compared field (see :func:`comparison_text`).
        threshold: the near-duplicate overlap threshold in (0, 1].
    """
    train_texts = [comparison_text(i.fields, field_name) for i in train_items]
    eval_texts = [comparison_text(i.fields, field_name) for i in eval_items]
    pairs: list[LeakPair] = find_near_duplicates(train_texts, eval_texts, threshold=threshold)
    return [
        Leak(eval_items[p.eval_index].line, train_items[p.train_index].line, p.overlap, p.exact,
             eval_texts[p.eval_index], train_texts[p.train_index])
        for p in pairs
    ]


def leakage_error(train_path: Path, eval_path: Path, leaks: Sequence[Leak]) -> DataError:
    """Return the one-line error that stops training on leaked eval items."""
    eval_lines = sorted({leak.eval_line for leak in leaks})
    shown = "; ".join(leak.describe() for leak in leaks[:_SHOWN])
    more = f" and {len(leaks) - _SHOWN} more pairs" if len(leaks) > _SHOWN else ""
    return DataError(
        f"{eval_path}: {len(eval_lines)} eval items leak into the training data {train_path}: {shown}{more}; "
        "remove them from one of the two files (`evalkit data leakage TRAIN EVAL` lists every pair)"
    )


def check_leakage(
    train_path: Path, eval_path: Path, field_name: str = "input", threshold: float = DEFAULT_THRESHOLD
) -> list[Leak]:
    """Load both files and return the leaks between them (see :func:`find_leaks`).

    Raises:
        DataError: a file is missing or malformed.
    """
    return find_leaks(load_items(train_path), load_items(eval_path), field_name, threshold)
