"""Tests for evalkit.data.items."""

from __future__ import annotations

import random

import pytest

from evalkit.data.items import (
    DEFAULT_THRESHOLD,
    LeakPair,
    find_near_duplicates,
    ngram_overlap,
    normalize_text,
    word_ngrams,
)


def test_normalize_text_lowercases_strips_punctuation_and_collapses_whitespace() -> None:
    assert normalize_text("  Hi   THERE,\nmy order #123-45 didn't\tarrive!! ") == (
        "hi there my order 123 45 didnt arrive"
    )
    assert normalize_text("snake_case & £75.00") == "snake case 75 00"
    assert normalize_text("?!  ...") == ""


def test_word_ngrams() -> None:
    assert word_ngrams("The quick, brown fox!") == {("the", "quick", "brown"), ("quick", "brown", "fox")}
    assert word_ngrams("a b a b", n=2) == {("a", "b"), ("b", "a")}
    # Fewer words than n: one shorter tuple, so short texts stay comparable.
    assert word_ngrams("Hello there") == {("hello", "there")}
    assert word_ngrams("  ,. ") == set()
    with pytest.raises(ValueError):
        word_ngrams("text", n=0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("the quick brown fox jumps", "the quick brown cat", 0.5),
        ("the quick brown fox jumps", "THE QUICK BROWN FOX JUMPS!", 1.0),
        # Containment scores 1.0: the denominator is the smaller set.
        ("my box arrived empty", "Hi team, my box arrived empty. Regards, Tom", 1.0),
        ("one two three four five six", "four five six seven", 1 / 2),
        ("alpha beta gamma", "delta epsilon zeta", 0.0),
        ("", "anything at all here", 0.0),
        ("", "", 0.0),
    ],
)
def test_ngram_overlap_fixed_values(a: str, b: str, expected: float) -> None:
    assert ngram_overlap(a, b) == pytest.approx(expected)
    assert ngram_overlap(b, a) == pytest.approx(expected)


TRAIN = [
    "My package says delivered but it's not here. I need it by tomorrow morning.",
    "How do I change the email address on my account?",
    "The app crashes as soon as I open it on my Pixel. This is ridiculous.",
    "Do you offer gift wrapping?",
    "I was charged twice for the same order, $45.99 each time. Please advise.",
]


def test_planted_exact_duplicate_is_reported_as_exact() -> None:
    pairs = find_near_duplicates(TRAIN, ["how do i change the EMAIL address on my account"])
    assert pairs == [LeakPair(eval_index=0, train_index=1, overlap=1.0, exact=True)]


def test_paraphrase_with_greeting_and_sign_off_is_found() -> None:
    eval_texts = [
        "Hi there, the app crashes as soon as I open it on my Pixel. This is ridiculous. Regards, Maria",
        "Hello support team,\nI was charged twice for the same order, $45.99 each time.\nBest, Tom",
    ]
    pairs = find_near_duplicates(TRAIN, eval_texts)
    assert [(p.eval_index, p.train_index, p.exact) for p in pairs] == [(0, 2, False), (1, 4, False)]
    # The train text is contained in the first eval text; the second one also
    # drops "Please advise." from the train text.
    assert [round(p.overlap, 3) for p in pairs] == [1.0, 0.833]
    assert all(p.overlap >= DEFAULT_THRESHOLD for p in pairs)


def test_unrelated_texts_sharing_only_boilerplate_are_not_flagged() -> None:
    eval_texts = [
        "Hi there, do you ship to Canada? Regards, Maria",
        "Is there a dark mode? This is ridiculous.",
        "My refund of $45.99 never arrived. Please advise.",
        "",
    ]
    assert find_near_duplicates(TRAIN, eval_texts) == []


def test_pairs_are_sorted_and_threshold_is_inclusive() -> None:
    train = ["a b c d e", "a b c x y", "a b c d e", "q r s t u"]
    pairs = find_near_duplicates(train, ["zz", "A B C D E"], threshold=1 / 3)
    assert pairs == [
        LeakPair(1, 0, 1.0, True),
        LeakPair(1, 2, 1.0, True),
        LeakPair(1, 1, 1 / 3, False),
    ]
    # {abc, bcx} shares 1 of 2 trigrams with "a b c d e": exactly 0.5, included.
    assert find_near_duplicates(train, ["a b c x"], threshold=0.5) == [
        LeakPair(0, 1, 1.0, False),
        LeakPair(0, 0, 0.5, False),
        LeakPair(0, 2, 0.5, False),
    ]


def test_invalid_threshold_rejected() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            find_near_duplicates(["a b c"], ["a b c"], threshold=bad)


def _brute_force(train: list[str], eval_: list[str], threshold: float, n: int) -> list[LeakPair]:
    train_norm = [normalize_text(b) for b in train]
    train_grams = [word_ngrams(b, n) for b in train]
    pairs: list[LeakPair] = []
    for e, a in enumerate(eval_):
        norm, grams = normalize_text(a), word_ngrams(a, n)
        if not norm:
            continue
        found = []
        for t, b_grams in enumerate(train_grams):
            if norm == train_norm[t]:
                found.append(LeakPair(e, t, 1.0, True))
            elif b_grams and (overlap := len(grams & b_grams) / min(len(grams), len(b_grams))) >= threshold:
                found.append(LeakPair(e, t, overlap, False))
        found.sort(key=lambda p: (-p.overlap, not p.exact, p.train_index))
        pairs.extend(found)
    return pairs


@pytest.mark.parametrize(("threshold", "n"), [(0.2, 3), (DEFAULT_THRESHOLD, 3), (0.6, 2), (1.0, 1)])
def test_index_search_matches_brute_force(threshold: float, n: int) -> None:
    # The inverted index with prefix filtering must find exactly what an
    # all-pairs comparison finds, including on highly templated text.
    from evalkit.data.classifier import generate_examples

    texts = [ex["input"] for ex in generate_examples(260, seed=7)]
    rng = random.Random(n)
    extras = ["", "hi", "Do you ship to Brazil?", "do you ship to brazil", "ship to brazil please"]
    train = texts[:200] + extras
    eval_ = texts[200:] + rng.sample(texts[:200], 20) + extras
    assert find_near_duplicates(train, eval_, threshold, n) == _brute_force(train, eval_, threshold, n)
