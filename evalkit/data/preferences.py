"""A small DPO preference set for the classifier, generated from its training split.

Every pair keeps a training example's prompt and prefers its canonical JSON answer over
one of three kinds of wrong answer, in equal shares:

* ``verbose``: the right labels wrapped in chatter and a markdown code fence;
* ``misformatted``: the right labels in another format (keys shuffled, single quotes,
  or pretty-printed over several lines);
* ``mislabelled``: canonical JSON with one field changed to another allowed value.

``prompt`` holds the chat messages the suite's template renders for the example (the
same :class:`~evalkit.prompting.PromptTemplate` evaluation uses), so DPO trains on the
prompts the suite asks. The set is drawn only from training data, never from eval items.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.data.classifier import FIELD_VALUES, canonical_output
from evalkit.data.items import Item
from evalkit.errors import DataError
from evalkit.files.safe_write import write_text
from evalkit.prompting import PromptTemplate

DEFAULT_PAIRS = 240
DEFAULT_SEED = 7
REJECTION_KINDS = ("verbose", "misformatted", "mislabelled")

_VERBOSE_OPENERS = (
    "Sure! Here is the classification of this customer message:",
    "Of course. After reading the message carefully, I would classify it as follows:",
    "Happy to help! Based on the content, here is my analysis:",
)
_VERBOSE_CLOSERS = (
    "Let me know if you need anything else!",
    "I hope this helps with routing the ticket.",
    "Feel free to ask if you want me to explain the reasoning.",
)


def _verbose(labels: dict[str, str], rng: random.Random) -> str:
    body = canonical_output(labels)
    return f"{rng.choice(_VERBOSE_OPENERS)}\n\n```json\n{body}\n```\n\n{rng.choice(_VERBOSE_CLOSERS)}"


def _misformatted(labels: dict[str, str], rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        keys = list(labels)
        while keys == list(labels):
            rng.shuffle(keys)
        return json.dumps({k: labels[k] for k in keys})
    if style == 1:
        return str(dict(labels))  # Python repr: single quotes, not JSON
    return json.dumps(labels, indent=2)


def _mislabelled(labels: dict[str, str], rng: random.Random) -> str:
    wrong = dict(labels)
    field = rng.choice(sorted(FIELD_VALUES))
    wrong[field] = rng.choice([v for v in FIELD_VALUES[field] if v != labels[field]])
    return canonical_output(wrong)


def rejected_answer(labels: dict[str, str], kind: str, rng: random.Random) -> str:
    """Return a wrong answer of ``kind`` (one of :data:`REJECTION_KINDS`) for these labels."""
    makers = {"verbose": _verbose, "misformatted": _misformatted, "mislabelled": _mislabelled}
    return makers[kind](labels, rng)


def make_preferences(
    train_items: Sequence[Item],
    template: PromptTemplate,
    source: Path,
    pairs: int = DEFAULT_PAIRS,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """Return ``pairs`` preference rows (``prompt``, ``chosen``, ``rejected``, ``rejected_kind``).

    Args:
        train_items: the classifier's training examples (``output`` holds canonical JSON).
        template: the suite's prompt template; renders ``prompt`` and ``chosen``.
        source: the training file, named in errors.
        pairs: how many pairs (at most one per training example).
        seed: the sampling seed.

    Raises:
        DataError: fewer training examples than pairs, or an output is not classifier JSON.
    """
    if pairs > len(train_items):
        raise DataError(f"{source}: {len(train_items)} examples cannot make {pairs} pairs; lower --pairs")
    rng = random.Random(seed)
    chosen_items = rng.sample(list(train_items), pairs)
    rows: list[dict[str, Any]] = []
    for number, item in enumerate(chosen_items):
        where = f"{source}:{item.line}"
        chosen = template.expected_output(item.fields, where)
        try:
            labels = json.loads(chosen)
            canonical_output(labels)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: output is not classifier JSON ({exc}); regenerate the data") from None
        kind = REJECTION_KINDS[number % len(REJECTION_KINDS)]
        rows.append({
            "prompt": template.messages(item.fields, where),
            "chosen": chosen,
            "rejected": rejected_answer(labels, kind, rng),
            "rejected_kind": kind,
        })
    return rows


def write_preferences(rows: Sequence[dict[str, Any]], out: Path) -> Path:
    """Write preference rows as JSONL (atomically: a temporary file renamed into place)."""
    return write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
