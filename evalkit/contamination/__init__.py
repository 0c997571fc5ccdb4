"""Contamination: the suite's ``contamination:`` block, n-gram overlap, the stage, its section and view."""
