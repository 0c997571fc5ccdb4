"""The quality gate: the suite's ``bars:`` grammar, bars checked against a run, the run's verdict, and their views."""
