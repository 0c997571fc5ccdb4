"""Per-slice comparison: the suite's ``slices:`` section, a metric's values on a slice, and the verdicts."""
