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

The label values, weights and rules are in :mod:`evalkit.data.classifier_labels`, the
phrase bank and the message composition in :mod:`evalkit.data.classifier_messages`; this
module draws the examples. Label rules (also written to ``data/classifier/README.md``):

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
"""

from __future__ import annotations

import random

from evalkit.data.classifier_labels import (
    CLASSIFIER_INSTRUCTION,
    DEFAULT_COUNT,
    DEFAULT_EVAL_FRACTION,
    DEFAULT_EXTRA_TRAIN,
    DEFAULT_SEED,
    FIELD_VALUES,
    OUTPUT_FIELDS,
    SENTIMENT_WEIGHTS,
    SITUATION_WEIGHTS,
    SITUATIONS,
    canonical_output,
    derive_labels,
    weighted_quotas,
)
from evalkit.data.classifier_messages import compose_message
from evalkit.data.near_duplicates import normalize_text

__all__ = [
    "CLASSIFIER_INSTRUCTION",
    "DEFAULT_COUNT",
    "DEFAULT_EVAL_FRACTION",
    "DEFAULT_EXTRA_TRAIN",
    "DEFAULT_SEED",
    "FIELD_VALUES",
    "OUTPUT_FIELDS",
    "SITUATIONS",
    "canonical_output",
    "derive_labels",
    "generate_examples",
    "weighted_quotas",
]


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
