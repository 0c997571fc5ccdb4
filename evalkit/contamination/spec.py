"""What a suite says about contamination: the ``contamination:`` block (all optional).

Example::

    contamination:
      n: 13          # word n-gram length (lm-eval's 13)
      min_words: 8   # items shorter than n are tested on their whole text from this many words

The suite config imports this module; :mod:`evalkit.contamination.stage` is the run stage
that measures, :mod:`evalkit.contamination.ngrams` the measure itself.
"""

from __future__ import annotations

from pydantic import Field

from evalkit.contamination.ngrams import DEFAULT_MIN_WORDS, DEFAULT_N
from evalkit.suite.schema import StrictModel

__all__ = ["ContaminationSpec"]


class ContaminationSpec(StrictModel):
    """How the ``contamination`` stage compares training data with benchmark and eval items."""

    enabled: bool = True
    """Set false to skip the stage (the run then records no contamination section)."""
    n: int = Field(default=DEFAULT_N, ge=3, le=50)
    """N-gram length in words: an item is contaminated when it shares one with the training data."""
    min_words: int = Field(default=DEFAULT_MIN_WORDS, ge=1, le=50)
    """Items with fewer words than ``n`` are tested on their whole text if they have at least
    this many words; shorter ones are reported as too short to test."""
