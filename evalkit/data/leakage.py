"""Train/eval leakage: eval items that repeat training items, exactly or nearly.

An eval input that is in the training data exactly or as a near duplicate (word-trigram
overlap, see :mod:`evalkit.data.near_duplicates`) makes the evaluation measure memory,
not skill, so training stops with the list of pairs (``evalkit data leakage TRAIN EVAL``
lists every pair; :mod:`evalkit.data.lint` checks the training file itself).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.data.items import Item, load_items
from evalkit.data.near_duplicates import DEFAULT_THRESHOLD, LeakPair, find_near_duplicates
from evalkit.errors import DataError

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
