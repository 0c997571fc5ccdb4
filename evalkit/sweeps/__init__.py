"""Checkpoint sweeps: the suite's ``sweep:`` section and the forgetting curve's stage."""
