"""The classifier data's messages: composed from the phrase bank so the labels stay visible.

A message is built from parts: a situation phrasing with slot values, an optional
greeting, context sentence, "what I tried" sentence, deadline/emergency clause
(emergencies only), tone phrase and sign-off, plus occasional typos in filler words
(never in the words that decide a label). The phrases are package data,
``classifier_phrases.json`` beside this module.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Any

__all__ = ["compose_message"]

# ---------------------------------------------------------------------------
# The phrase bank is data, kept in classifier_phrases.json beside this module:
# * bank: situation phrasings, category -> pool -> situations -> phrasings. The
#   "blocked" pool is shared by high (no deadline) and critical (plus a
#   deadline/emergency clause) examples. Phrasings carry no tone and no deadline
#   words, so those signals come only from the parts added around them.
# * emergency_*: deadline / emergency material, used only for "emergency"
#   situations and critical "blocked" ones.
# * tone_*, question_tone: each tone has full sentences plus "stem + tail" pairs.
# * neutral_problem_sentences: neutral closers that only fit a problem report.
# * greetings, sign_offs, names, context_*, attempts_*, slot_choices: neutral
#   background that never changes a label.
# ---------------------------------------------------------------------------
_Bank = dict[str, dict[str, tuple[tuple[str, ...], ...]]]


def _frozen(value: Any) -> Any:
    """Lists from JSON as tuples, recursively, so the bank stays immutable."""
    if isinstance(value, list):
        return tuple(_frozen(entry) for entry in value)
    if isinstance(value, dict):
        return {key: _frozen(entry) for key, entry in value.items()}
    return value


_PHRASES: dict[str, Any] = _frozen(
    json.loads(resources.files("evalkit.data").joinpath("classifier_phrases.json").read_text(encoding="utf-8"))
)
_BANK: _Bank = _PHRASES["bank"]
_EMERGENCY_REASONS_GENERIC: tuple[str, ...] = _PHRASES["emergency_reasons_generic"]
_EMERGENCY_REASONS: dict[str, tuple[str, ...]] = _PHRASES["emergency_reasons"]
_EMERGENCY_WHEN: tuple[str, ...] = _PHRASES["emergency_when"]
_EMERGENCY_VERBS: tuple[str, ...] = _PHRASES["emergency_verbs"]
_TONE_SENTENCES: dict[str, tuple[str, ...]] = _PHRASES["tone_sentences"]
_TONE_STEMS: dict[str, tuple[str, ...]] = _PHRASES["tone_stems"]
_TONE_TAILS: dict[str, tuple[str, ...]] = _PHRASES["tone_tails"]
_NEUTRAL_PROBLEM_SENTENCES: tuple[str, ...] = _PHRASES["neutral_problem_sentences"]
_QUESTION_TONE: dict[str, tuple[str, ...]] = _PHRASES["question_tone"]
_GREETINGS: tuple[str, ...] = _PHRASES["greetings"]
_SIGN_OFFS: dict[str, tuple[str, ...]] = _PHRASES["sign_offs"]
_NAMES: tuple[str, ...] = _PHRASES["names"]
_CONTEXT_GENERIC: tuple[str, ...] = _PHRASES["context_generic"]
_CONTEXT_BY_CATEGORY: dict[str, tuple[str, ...]] = _PHRASES["context_by_category"]
_ATTEMPTS_PROBLEM: tuple[str, ...] = _PHRASES["attempts_problem"]
_ATTEMPTS_QUESTION: tuple[str, ...] = _PHRASES["attempts_question"]
_SLOT_CHOICES: dict[str, tuple[str, ...]] = _PHRASES["slot_choices"]


def _emergency_clause(rng: random.Random, category: str) -> str:
    """Compose a sentence stating a deadline or an emergency."""
    reasons = _EMERGENCY_REASONS[category] + _EMERGENCY_REASONS_GENERIC
    reason = rng.choice(reasons)
    need = f"I need this {rng.choice(_EMERGENCY_VERBS)} {rng.choice(_EMERGENCY_WHEN)}"
    alarm = rng.choice(("This is an emergency", "It is an emergency", "This is urgent"))
    form = rng.randrange(5)
    if form == 0:
        return f"{need}, {reason}."
    if form == 1:
        return f"{_capitalize(reason)}, so {need}."
    if form == 2:
        return f"{alarm}: {reason}."
    if form == 3:
        return f"{_capitalize(reason)}. {alarm}."
    # A category reason on its own already names a concrete deadline or emergency.
    return f"{_capitalize(rng.choice(_EMERGENCY_REASONS[category]))}."


def _tone_phrase(rng: random.Random, sentiment: str, is_question: bool, stems: bool = True) -> str:
    """Compose one phrase expressing ``sentiment``.

    Args:
        rng: Random source.
        sentiment: The tone to express.
        is_question: Whether the message is a question (some phrases only fit
            problem reports, others only questions).
        stems: Whether "stem + tail" combinations may be used.
    """
    sentences = _TONE_SENTENCES[sentiment]
    if sentiment == "neutral" and not is_question:
        sentences += _NEUTRAL_PROBLEM_SENTENCES
    roll = rng.random()
    if is_question and roll < 0.2:
        return rng.choice(_QUESTION_TONE[sentiment])
    if roll < 0.5 or not stems or (is_question and sentiment == "neutral"):
        # Neutral stems ("Please have a look ...") only fit problem reports.
        return rng.choice(sentences)
    return rng.choice(_TONE_STEMS[sentiment]) + rng.choice(_TONE_TAILS[sentiment])


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


_NO_TYPO_WORDS = frozenset({"not", "no", "never", "can't", "cannot", "don't", "didn't", "isn't", "won't"})


def _sample_slots(rng: random.Random) -> dict[str, str]:
    slots = {name: rng.choice(values) for name, values in _SLOT_CHOICES.items()}
    currency = rng.choice(("$", "$", "$", "£", "€"))
    cents = rng.choice(("00", "99", "49", "95", "50", "20"))
    slots["amount"] = f"{currency}{rng.randint(6, 480)}.{cents}"
    if rng.random() < 0.25:
        slots["amount"] = f"{currency}{rng.choice((10, 20, 25, 40, 50, 75, 100, 150, 200, 300))}"
    slots["order"] = rng.choice(("#", "", "no. ", "ORD-")) + str(rng.randint(100000, 999999))
    slots["days"] = str(rng.randint(3, 21))
    slots["n"] = str(rng.randint(2, 9))
    slots["hours"] = str(rng.randint(2, 6))
    slots["years"] = str(rng.randint(2, 12))
    slots["year"] = str(rng.randint(2012, 2023))
    slots["last4"] = f"{rng.randint(0, 9999):04d}"
    return slots


def _typo(text: str, rng: random.Random) -> str:
    """Introduce one realistic typo (swap, drop or double a letter) in a filler word."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.lower() not in _NO_TYPO_WORDS]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randint(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    elif kind == "drop":
        word = word[:pos] + word[pos + 1 :]
    else:
        word = word[:pos] + word[pos] + word[pos:]
    words[i] = word
    return " ".join(words)


def compose_message(rng: random.Random, category: str, situation: str, sentiment: str) -> str:
    """Build one customer message whose labels follow from its content.

    Args:
        rng: the generator's random source; every draw is taken from it in a fixed
            order, so the same seed composes the same messages.
        category: one of ``FIELD_VALUES["category"]``.
        situation: one of ``SITUATIONS`` (an ``emergency`` gets a deadline clause).
        sentiment: one of ``FIELD_VALUES["sentiment"]``.
    """
    slots = _sample_slots(rng)
    pool = "blocked" if situation == "emergency" else situation
    phrasings = rng.choice(_BANK[category][pool])
    core = rng.choice(phrasings).format(**slots)
    is_question = situation == "request"

    # Body segments are (text, may_get_typo). Only filler gets typos, so the
    # words that decide a label (situation, deadline, tone) stay intact.
    before: list[tuple[str, bool]] = []
    after: list[tuple[str, bool]] = []

    if rng.random() < 0.3:
        context_pool = _CONTEXT_BY_CATEGORY[category] + _CONTEXT_GENERIC
        context = (rng.choice(context_pool).format(**slots), True)
        (before if rng.random() < 0.7 else after).append(context)
    attempts = _ATTEMPTS_QUESTION if is_question else _ATTEMPTS_PROBLEM
    if rng.random() < 0.22:
        after.append((rng.choice(attempts), True))

    if situation == "emergency":
        clause = (_emergency_clause(rng, category).format(**slots), False)
        # Stressed customers sometimes lead with the deadline.
        if rng.random() < 0.3:
            before.insert(0, clause)
        else:
            after.insert(0, clause)

    # Non-neutral tones always get a phrase so the sentiment label is visible.
    if sentiment != "neutral" or rng.random() < 0.4:
        tone = _tone_phrase(rng, sentiment, is_question)
        if sentiment == "frustrated" and rng.random() < 0.12:
            tone = tone.upper()
        if rng.random() < 0.35:
            before.insert(0, (tone, False))
        else:
            after.append((tone, False))
        if sentiment != "neutral" and rng.random() < 0.2:
            # A second phrase of the same tone makes some messages longer.
            # Full sentences only, so the same stem is not repeated twice.
            second = _tone_phrase(rng, sentiment, is_question, stems=False)
            if second != tone:
                after.append((second, False))

    body_parts = []
    for text, fillable in [*before, (core, False), *after]:
        if fillable and rng.random() < 0.18:
            text = _typo(text, rng)
        body_parts.append(text)
    body = " ".join(body_parts)

    # Email-style messages put greeting and sign-off on their own lines;
    # chat-style ones run everything together.
    sep = "\n" if rng.random() < 0.3 else " "
    if rng.random() < 0.55:
        greeting = rng.choice(_GREETINGS)
        if rng.random() < 0.18:
            greeting = _typo(greeting, rng)
        if sep == " " and not greeting.endswith(".") and not body.startswith(("I ", "I'")):
            body = body[0].lower() + body[1:]  # "Hi, my order ..." rather than "Hi, My order ..."
        body = f"{greeting}{sep}{body}"
    if rng.random() < 0.4:
        sign_off = rng.choice(_SIGN_OFFS[sentiment])
        name = rng.choice(_NAMES) if rng.random() < 0.7 else ""
        if sign_off == "-":
            sign_off = f"- {name}" if name else ""
        elif name:
            sign_off = f"{sign_off}{sep}{name}"
        else:
            sign_off = sign_off.rstrip(",")
        if sign_off:
            body = f"{body}{sep}{sign_off}"
    elif rng.random() < 0.2:
        body = f"{body} {rng.choice(_NAMES)}"

    # Casual writing: sometimes all lowercase, sometimes without a final stop.
    message = body
    if rng.random() < 0.12:
        message = message.lower()
    if rng.random() < 0.15 and message[-1] in ".!":
        message = message.rstrip(".!")
    if sentiment == "frustrated" and message[-1] in ".?" and rng.random() < 0.2:
        message = message[:-1] + rng.choice(("!!", "!!!", "?!"))
    return message
