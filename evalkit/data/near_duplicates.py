"""Word n-gram near-duplicate detection between two text collections.

Used by the classifier-data split (so no eval message has a near twin in train)
and by the ``evalkit data leakage TRAIN EVAL`` command.

Similarity is the *overlap coefficient* of word trigram sets,
``|A ∩ B| / min(|A|, |B|)``. Dividing by the smaller set (not the union, as
Jaccard does) means a short message that is fully contained in a longer one
(the same complaint plus a greeting, a sign-off or a context sentence) still
scores close to 1.0, which is exactly the leak we care about.

Threshold choice (``DEFAULT_THRESHOLD = 0.5``): measured on the synthetic
classifier data, two messages built from the *same* situation phrasing with the
same slot values but a different greeting, context sentence, tone phrase or
sign-off score 0.55-1.0 (median about 0.85), because the phrasing is the longest
part of the message and all of its trigrams are shared. Messages from
*different* phrasings share only boilerplate trigrams (a common greeting,
tone phrase or sign-off) and score below 0.45 (99.9th percentile about 0.3).
0.5 sits in the gap: a pair is flagged only when at least half of the shorter
message's trigrams re-occur in the other one, i.e. when their core really is
the same, while shared pleasantries alone never reach it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_NGRAM",
    "DEFAULT_THRESHOLD",
    "LeakPair",
    "find_near_duplicates",
    "ngram_overlap",
    "normalize_text",
    "word_ngrams",
]

DEFAULT_THRESHOLD = 0.5
DEFAULT_NGRAM = 3

# Apostrophes are deleted (so "can't" and "cant" agree); any other
# punctuation becomes a word break.
_APOSTROPHES = re.compile(r"['\u2018\u2019`]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_WHITESPACE = re.compile(r"\s+")


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
    lowered = _APOSTROPHES.sub("", text.lower())
    return _WHITESPACE.sub(" ", _PUNCTUATION.sub(" ", lowered)).strip()


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
    words = normalize_text(text).split()
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


def find_near_duplicates(
    train_texts: Sequence[str],
    eval_texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    n: int = DEFAULT_NGRAM,
) -> list[LeakPair]:
    """Find every (eval, train) pair that is an exact or near duplicate.

    An inverted index maps each train n-gram to the train texts containing it,
    so each eval text is only compared with train texts it shares at least one
    n-gram with; the cost grows with the number of shared n-grams, not with
    ``len(train) * len(eval)`` string comparisons.

    Args:
        train_texts: Training texts.
        eval_texts: Evaluation texts.
        threshold: Minimum overlap coefficient (inclusive) for a near duplicate.
            See the module docstring for why 0.5 is the default.
        n: N-gram length in words.

    Returns:
        Pairs sorted by eval index, then by decreasing overlap, then by train
        index. Exact duplicates (after :func:`normalize_text`) are reported with
        ``exact=True`` and ``overlap=1.0``; texts with no words are never matched.

    Raises:
        ValueError: If ``threshold`` is not in (0, 1] or ``n`` < 1.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")

    train_norm = [normalize_text(t) for t in train_texts]
    exact_index: dict[str, list[int]] = defaultdict(list)
    for i, norm in enumerate(train_norm):
        if norm:
            exact_index[norm].append(i)

    train_grams = [word_ngrams(norm, n) for norm in train_norm]
    postings: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, grams in enumerate(train_grams):
        for gram in grams:
            postings[gram].append(i)

    pairs: list[LeakPair] = []
    for e, text in enumerate(eval_texts):
        norm = normalize_text(text)
        if not norm:
            continue
        exact_hits = set(exact_index.get(norm, ()))
        found = [LeakPair(e, t, 1.0, True) for t in sorted(exact_hits)]

        grams = word_ngrams(norm, n)
        shared: dict[int, int] = defaultdict(int)
        for gram in grams:
            for t in postings.get(gram, ()):
                shared[t] += 1
        for t, count in shared.items():
            if t in exact_hits:
                continue
            overlap = count / min(len(grams), len(train_grams[t]))
            if overlap >= threshold:
                found.append(LeakPair(e, t, overlap, False))

        found.sort(key=lambda p: (-p.overlap, not p.exact, p.train_index))
        pairs.extend(found)
    return pairs
