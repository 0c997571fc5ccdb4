"""A metric's values on one slice of the items (``exact_match[category=billing]``).

Reads what the slices stage recorded in a run; :mod:`evalkit.slices.spec` (the grammar)
stays free of run types, so the suite config and the run's section schema can import it.
"""

from __future__ import annotations

from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.sections import parse_section
from evalkit.record.tradeoffs import SlicesSection
from evalkit.slices.spec import SECTION, split_sliced_metric

__all__ = ["item_labels", "sliced_values"]


def item_labels(run: RunResult, slice_name: str) -> dict[str, str] | None:
    """Return item id -> slice label recorded by the slices stage (None when not recorded)."""
    stored = run.sections.get(SECTION)
    if stored is None:
        return None
    section: SlicesSection = parse_section(SlicesSection, stored, f"run {run.run_id}: sections.{SECTION}")
    labels = section.labels.get(slice_name)
    return None if labels is None else dict(labels)


def sliced_values(run: RunResult, candidate: CandidateResult, metric: str) -> dict[str, float]:
    """Return item id -> value of a metric, or of one slice of it (``metric[slice=value]``).

    Empty when the metric, or the slice's labels, were not recorded in the run.
    """
    parts = split_sliced_metric(metric)
    if parts is None:
        return candidate.values(metric)
    base_metric, slice_name, wanted = parts
    labels = item_labels(run, slice_name)
    if labels is None:
        return {}
    return {item_id: value for item_id, value in candidate.values(base_metric).items()
            if labels.get(item_id) == wanted}
