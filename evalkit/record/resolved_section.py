"""The ``resolved_suite`` section: the suite exactly as a run ran it (see :mod:`evalkit.record.resolved_suite`).

Written by :func:`evalkit.api.run_suite` into every run (``summary.json`` and the
store), read by ``evalkit run --from RUN`` to run the same suite again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from evalkit.record.sections import SectionModel

__all__ = ["RESOLVED_SUITE", "CandidateRuntime", "ResolvedSuiteSection"]

RESOLVED_SUITE = "resolved_suite"


class CandidateRuntime(SectionModel):
    """Where and how one candidate generated: its backend, device and resolved dtype.

    ``device`` and ``dtype`` are None for a backend that decides them itself (an
    external server, the mock backend, a plugin's backend).
    """

    backend: str
    device: str | None = None
    dtype: str | None = None


class ResolvedSuiteSection(SectionModel):
    """The suite as evalkit ran it: every value after defaults, ``--set`` and ``--limit``."""

    suite_file: str
    """The suite file, absolute: relative paths in ``config`` are resolved against its directory."""
    config: dict[str, Any]
    """The validated suite, every default filled in (as a suite file would write it)."""
    overrides: list[str] = Field(default_factory=list)
    """The ``--set KEY=VALUE`` options applied (already part of ``config``)."""
    candidates: list[str] | None = None
    """The ``--candidate`` selection; None: every candidate."""
    allow_missing: list[str] = Field(default_factory=list)
    """The ``--allow-missing`` candidates."""
    limit: int | None = None
    """``--limit N``, when given (its cuts are already part of ``config``)."""
    paths: dict[str, str] = Field(default_factory=dict)
    """The suite's paths resolved: ``dataset.path``, ``candidates.NAME.adapter``, ``output_dir`` ..."""
    files: dict[str, str] = Field(default_factory=dict)
    """SHA-256 of every file the suite names (data, schemas, rubrics, training configs), by the name written."""
    runtime: dict[str, CandidateRuntime] = Field(default_factory=dict)
    """Per candidate: backend, device and dtype as resolved on this machine."""
    seeds: dict[str, int] = Field(default_factory=dict)
    """Every seed the run used (``generation``: the sampling seed)."""
    versions: dict[str, str | None] = Field(default_factory=dict)
    """evalkit, Python and the key libraries (torch, transformers, peft, vllm, lm-eval); None: not installed."""
