"""``word_count_at_most``: passes when the answer has at most N words (``word_count_at_most: 3``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.checks import Check, CheckContext, Score, check
from evalkit.errors import ConfigError


@check("word_count_at_most", kind="binary")
def word_count_at_most(options: dict[str, Any], context: CheckContext) -> Check:
    """Build the check from ``word_count_at_most: N`` (or ``{max: N}``)."""
    limit = options.get("max", options.get("value"))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"{context.source}: word_count_at_most needs a whole number of words, e.g. "
                          f"`word_count_at_most: 3`, not {limit!r}")

    def score(prediction: str, reference: str) -> Mapping[str, Score]:
        words = len(prediction.split())
        if words <= limit:
            return {"word_count_at_most": Score(1.0)}
        return {"word_count_at_most": Score(0.0, f"{words} words, more than {limit}")}

    return score
