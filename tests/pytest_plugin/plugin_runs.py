"""Where the pytest-plugin tests' inner sessions leave their runs."""

from __future__ import annotations

from pathlib import Path


def run_dirs(root: Path) -> list[Path]:
    """The finished run directories of the `tiny` suite under a reports root."""
    return sorted(p for p in (root / "tiny").glob("*") if (p / "summary.json").is_file())
