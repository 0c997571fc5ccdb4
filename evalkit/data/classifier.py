"""Seeded generator of customer-support classification data.

Every example asks a model to label one customer message with a JSON object::

    {"severity": ..., "category": ..., "urgency": ..., "sentiment": ...,
     "recommended_action": ...}

Generation samples the latent labels first (category, a *situation* kind and a
tone), derives severity, urgency and recommended action from fixed rules, and
only then composes the message from parts: a situation phrasing with slot
values, an optional greeting, context sentence, "what I tried" sentence,
deadline/emergency clause (critical non-fraud only), tone phrase and sign-off,
plus occasional typos in filler words. Labels therefore stay derivable from the
text while surface forms vary enough that memorising templates is not enough.

The label values, weights and rules come first below, then the phrase bank and the
message composition, then the drawing of the examples. Label rules (also written to ``data/classifier/README.md``):

* severity: ``critical`` for fraud or a security breach, or when the customer
  is blocked / has lost money AND states a deadline or emergency; ``high`` when
  blocked or money was lost without an emergency; ``medium`` when something
  works wrong but there is a workaround or the service is only degraded;
  ``low`` for a request or a question.
* urgency: critical -> immediate, high -> same_day, medium/low -> routine.
* recommended_action: critical/high -> escalate_to_agent, medium ->
  create_ticket, low -> self_service.
* sentiment: the customer's tone (distressed, frustrated, neutral, positive).
* category: the topic of the message.

Also in this module:

* The classifier data's labels: the allowed values and the rules that derive them.
* The classifier data's messages: composed from the phrase bank so the labels stay visible.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from importlib import resources
from typing import Any

from evalkit.data.items import normalize_text

__all__ = [
    "CLASSIFIER_INSTRUCTION", "DEFAULT_COUNT", "DEFAULT_EVAL_FRACTION", "DEFAULT_EXTRA_TRAIN", "DEFAULT_SEED",
    "FIELD_VALUES", "OUTPUT_FIELDS", "SENTIMENT_WEIGHTS", "SITUATIONS", "SITUATION_WEIGHTS", "canonical_output",
    "compose_message", "derive_labels", "generate_examples", "weighted_quotas",
]


# The classifier data's labels: the allowed values and the rules that derive them.
#
# Generation samples the latent labels first (category,
# a *situation* kind and a tone) with the weights here, then derives severity, urgency
# and recommended action with the rules here, and only then composes the message
# (below). The rules are listed in this module's docstring and in
# ``data/classifier/README.md``.

CLASSIFIER_INSTRUCTION = "Classify this customer message by severity and category"

OUTPUT_FIELDS: tuple[str, ...] = (
    "severity",
    "category",
    "urgency",
    "sentiment",
    "recommended_action",
)

FIELD_VALUES: dict[str, tuple[str, ...]] = {
    "severity": ("critical", "high", "medium", "low"),
    "category": ("account_access", "billing", "shipping", "technical", "general_inquiry"),
    "urgency": ("immediate", "same_day", "routine"),
    "sentiment": ("distressed", "frustrated", "neutral", "positive"),
    "recommended_action": ("escalate_to_agent", "create_ticket", "self_service"),
}

# Latent situation kinds, from most to least severe.
SITUATIONS: tuple[str, ...] = ("fraud", "emergency", "blocked", "degraded", "request")

DEFAULT_COUNT = 800
DEFAULT_SEED = 20261128
DEFAULT_EVAL_FRACTION = 0.1
# Extra training messages, generated with the next seed after the split: the demo adapter
# needs more than 720 examples to learn the severity rules (BENCHMARKS.md), while the eval
# split stays the same 80 messages.
DEFAULT_EXTRA_TRAIN = 1200

_SEVERITY_BY_SITUATION: dict[str, str] = {
    "fraud": "critical",
    "emergency": "critical",
    "blocked": "high",
    "degraded": "medium",
    "request": "low",
}
_URGENCY_BY_SEVERITY: dict[str, str] = {
    "critical": "immediate",
    "high": "same_day",
    "medium": "routine",
    "low": "routine",
}
_ACTION_BY_SEVERITY: dict[str, str] = {
    "critical": "escalate_to_agent",
    "high": "escalate_to_agent",
    "medium": "create_ticket",
    "low": "self_service",
}

# Share of each situation kind per category. Fraud and emergencies are rarer for
# general inquiries, so the others carry a bit more; overall this gives about
# 20% critical, 24% high, 25% medium, 31% low.
SITUATION_WEIGHTS: dict[str, dict[str, float]] = {
    "account_access": {"fraud": 0.12, "emergency": 0.12, "blocked": 0.26, "degraded": 0.20, "request": 0.30},
    "billing": {"fraud": 0.14, "emergency": 0.10, "blocked": 0.28, "degraded": 0.20, "request": 0.28},
    "shipping": {"fraud": 0.06, "emergency": 0.14, "blocked": 0.26, "degraded": 0.26, "request": 0.28},
    "technical": {"fraud": 0.06, "emergency": 0.14, "blocked": 0.26, "degraded": 0.30, "request": 0.24},
    "general_inquiry": {"fraud": 0.04, "emergency": 0.06, "blocked": 0.14, "degraded": 0.28, "request": 0.48},
}

# Tone given the situation: mostly plausible pairings, but every tone occurs with
# every situation so that tone and severity are not confounded (a polite
# customer with a real emergency, an angry one with a trivial question).
SENTIMENT_WEIGHTS: dict[str, dict[str, float]] = {
    "fraud": {"distressed": 0.42, "frustrated": 0.28, "neutral": 0.20, "positive": 0.10},
    "emergency": {"distressed": 0.40, "frustrated": 0.25, "neutral": 0.20, "positive": 0.15},
    "blocked": {"distressed": 0.18, "frustrated": 0.40, "neutral": 0.27, "positive": 0.15},
    "degraded": {"distressed": 0.10, "frustrated": 0.34, "neutral": 0.34, "positive": 0.22},
    "request": {"distressed": 0.08, "frustrated": 0.18, "neutral": 0.44, "positive": 0.30},
}


def derive_labels(category: str, situation: str, sentiment: str) -> dict[str, str]:
    """Derive the full label set from the latent category, situation and tone.

    Args:
        category: One of ``FIELD_VALUES["category"]``.
        situation: One of :data:`SITUATIONS`.
        sentiment: One of ``FIELD_VALUES["sentiment"]``.

    Returns:
        A dict with the five output fields in :data:`OUTPUT_FIELDS` order.

    Raises:
        ValueError: If any argument is not an allowed value.
    """
    if situation not in _SEVERITY_BY_SITUATION:
        raise ValueError(f"unknown situation {situation!r}")
    severity = _SEVERITY_BY_SITUATION[situation]
    labels = {
        "severity": severity,
        "category": category,
        "urgency": _URGENCY_BY_SEVERITY[severity],
        "sentiment": sentiment,
        "recommended_action": _ACTION_BY_SEVERITY[severity],
    }
    _validate(labels)
    return labels


def _validate(labels: Mapping[str, str]) -> None:
    if tuple(sorted(labels)) != tuple(sorted(OUTPUT_FIELDS)):
        raise ValueError(f"labels must have exactly the keys {OUTPUT_FIELDS}, got {tuple(labels)}")
    for field in OUTPUT_FIELDS:
        if labels[field] not in FIELD_VALUES[field]:
            raise ValueError(f"{field}={labels[field]!r} is not one of {FIELD_VALUES[field]}")


def canonical_output(labels: Mapping[str, str]) -> str:
    """Serialise labels as the canonical JSON target string.

    Args:
        labels: Mapping with exactly the keys in :data:`OUTPUT_FIELDS`, each an
            allowed value from :data:`FIELD_VALUES`; key order does not matter.

    Returns:
        ``json.dumps`` of the labels with keys in :data:`OUTPUT_FIELDS` order
        and default separators, e.g. ``{"severity": "critical", ...}``.

    Raises:
        ValueError: If keys are missing or extra, or a value is not allowed.
    """
    _validate(labels)
    return json.dumps({field: labels[field] for field in OUTPUT_FIELDS})


def weighted_quotas(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` over keys in proportion to weights (largest remainder)."""
    weight_sum = sum(weights.values())
    raw = {key: total * w / weight_sum for key, w in weights.items()}
    quotas = {key: int(value) for key, value in raw.items()}
    leftover = total - sum(quotas.values())
    # Ties are broken by key order so the result is deterministic.
    by_remainder = sorted(raw, key=lambda key: (-(raw[key] - quotas[key]), list(weights).index(key)))
    for key in by_remainder[:leftover]:
        quotas[key] += 1
    return quotas


# The classifier data's messages: composed from the phrase bank so the labels stay visible.
#
# A message is built from parts: a situation phrasing with slot values, an optional
# greeting, context sentence, "what I tried" sentence, deadline/emergency clause
# (emergencies only), tone phrase and sign-off, plus occasional typos in filler words
# (never in the words that decide a label). The phrases are package data,
# ``classifier_phrases.json`` beside this module.

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


# Seeded generator of customer-support classification data.

def generate_examples(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """Generate ``count`` labelled customer-support examples.

    Categories are exactly balanced (up to rounding); situation kinds follow
    per-category quotas; tones are sampled per situation. The same ``count`` and
    ``seed`` always give the same list.

    Args:
        count: Number of examples, at least 1.
        seed: Seed for the private ``random.Random`` instance.

    Returns:
        Examples ``{"instruction", "input", "output"}`` in a shuffled order, with
        no two messages equal after normalisation.

    Raises:
        ValueError: If ``count`` < 1.
        RuntimeError: If no new unique message can be composed (count far
            beyond what the phrasing bank supports).
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = random.Random(seed)
    categories = FIELD_VALUES["category"]
    per_category = weighted_quotas(count, {c: 1.0 for c in categories})
    slots: list[tuple[str, str]] = []
    for category in categories:
        quotas = weighted_quotas(per_category[category], SITUATION_WEIGHTS[category])
        for situation in SITUATIONS:
            slots.extend([(category, situation)] * quotas[situation])
    rng.shuffle(slots)

    seen: set[str] = set()
    examples: list[dict[str, str]] = []
    for category, situation in slots:
        weights = SENTIMENT_WEIGHTS[situation]
        sentiment = rng.choices(list(weights), weights=list(weights.values()))[0]
        for _ in range(200):
            message = compose_message(rng, category, situation, sentiment)
            key = normalize_text(message)
            if key not in seen:
                break
        else:
            raise RuntimeError(f"could not compose a unique message for {category}/{situation}")
        seen.add(key)
        labels = derive_labels(category, situation, sentiment)
        examples.append(
            {
                "instruction": CLASSIFIER_INSTRUCTION,
                "input": message,
                "output": canonical_output(labels),
            }
        )
    return examples
