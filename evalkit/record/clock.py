"""The one "now" evalkit writes into runs, manifests, markers and the store.

A leaf module (standard library only). Every stored timestamp is UTC, ISO 8601, to the
second, with its offset (``2026-11-28T10:00:00+00:00``), so they sort and compare as text
and :meth:`datetime.fromisoformat` reads them back. Run ids are the one deliberate
exception: :func:`evalkit.runner.new_run_id` writes the compact ``20261128-100000`` form,
because it names a directory.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> str:
    """Return the current UTC time as an ISO string to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
