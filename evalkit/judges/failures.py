"""Failed judgments count: how they are scored, counted, and when they fail a judge's bars.

A judgment *fails* when the judge could not be asked (transport failure after the
bounded retries: 429, 5xx, timeouts), or answered with nothing usable after the parse
retries (malformed JSON, an off-scale score, a missing criterion), or could not take
the item at all (its prompt too long). Such an item is never dropped:

* it is **scored as a failure**: the criterion's minimum (1 on the 1..5 scale) in
  pointwise mode, a loss (preference 0) in pairwise mode, with the reason
  ``judgment failed: ...``. So it enters the judge's means, its bars, its paired
  comparison with the baseline and the report's lowest items: an output that breaks
  the judge cannot escape the judge's gate by breaking it;
* it is **counted**: ``run.sections["judges"][name]["failures"][candidate]`` holds
  ``n``, ``n_failed``, ``rate``, ``max_failures`` and ``exceeded``, and each
  criterion's statistics in ``per_candidate`` carry ``n_failed``;
* beyond the judge's tolerance (``max_failures``, default 5% of the judged items) a
  bar on that judge's metrics **fails**, whatever its value: the numbers are then
  more the judge's outage than the candidate's quality. A bar that compares with the
  baseline fails when either side exceeds it.

Light to import (the section's schema, no judge clients): :mod:`evalkit.bars.evaluate` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.judges.section import JUDGES, FailureCount
from evalkit.record.sections import parse_section

DEFAULT_MAX_FAILURES = 0.05
FAILED_REASON = "judgment failed"


def failed_reason(error: str) -> str:
    """Return the reason recorded on a score given for a failed judgment."""
    return f"{FAILED_REASON} (scored as a failure): {error or 'no usable judgment'}"


def failure_entry(n: int, n_failed: int, max_failures: float) -> dict[str, Any]:
    """Return one candidate's failure counts for the judge section."""
    rate = n_failed / n if n else 0.0
    return FailureCount(n=n, n_failed=n_failed, rate=rate, max_failures=max_failures,
                        exceeded=rate > max_failures + 1e-12).model_dump(mode="json")


def failures_exceeded(sections: Mapping[str, Any], metric: str, candidates: list[str]) -> str | None:
    """Return why a bar on ``metric`` fails for too many failed judgments, or None.

    Args:
        sections: the run's sections (``judges`` is read).
        metric: the bar's metric; only ``judge.<name>.<criterion>`` metrics are affected.
        candidates: the candidate and, for a bar that compares, the baseline.

    Raises:
        DataError: the judge's ``failures`` entry does not have its schema's shape.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key = parts[1]
    entry = (sections.get(JUDGES) or {}).get(key) or {}
    failures: dict[str, FailureCount] = parse_section(dict[str, FailureCount], entry.get("failures") or {},
                                                      f"sections.{JUDGES}.{key}.failures")
    for name in candidates:
        count = failures.get(name)
        if count is not None and count.exceeded:
            return (f"judge '{key}': {count.n_failed} of {count.n} judgments of '{name}' failed "
                    f"({count.rate:.0%} > max_failures {count.max_failures:.0%}); the bar "
                    "fails until the judge answers (see the judge's error examples)")
    return None
