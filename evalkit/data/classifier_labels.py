"""The classifier data's labels: the allowed values and the rules that derive them.

Generation (:mod:`evalkit.data.classifier`) samples the latent labels first (category,
a *situation* kind and a tone) with the weights here, then derives severity, urgency
and recommended action with the rules here, and only then composes the message
(:mod:`evalkit.data.classifier_messages`). The rules are listed in
:mod:`evalkit.data.classifier` and in ``data/classifier/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = [
    "CLASSIFIER_INSTRUCTION",
    "DEFAULT_COUNT",
    "DEFAULT_EVAL_FRACTION",
    "DEFAULT_EXTRA_TRAIN",
    "DEFAULT_SEED",
    "FIELD_VALUES",
    "OUTPUT_FIELDS",
    "SENTIMENT_WEIGHTS",
    "SITUATIONS",
    "SITUATION_WEIGHTS",
    "canonical_output",
    "derive_labels",
    "weighted_quotas",
]

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
