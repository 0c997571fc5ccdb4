"""Dataset builders and data-hygiene helpers (synthetic classifier data, leakage checks)."""
