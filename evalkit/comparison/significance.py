"""The significance levels every paired test and verdict uses: a leaf of constants.

Kept apart from :mod:`evalkit.comparison.stats` (numpy) so that the result types that name them
(:mod:`evalkit.comparison.result`) and the run codec load without numpy.
"""

from __future__ import annotations

__all__ = ["ALPHA", "CONFIDENCE", "POWER"]

CONFIDENCE = 0.95
"""Coverage of every interval evalkit reports."""
ALPHA = 1.0 - CONFIDENCE
"""Two-sided significance level of every paired test."""
POWER = 0.80
"""Power the sample-size estimates (``items_needed``) are computed for."""
