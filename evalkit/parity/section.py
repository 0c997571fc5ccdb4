"""The ``parity`` section: HF vs vLLM, merged model vs adapter, and adapters that change nothing.

Written by :meth:`evalkit.parity.checks.ParityReport.to_dict` (the ``parity`` stage, and the
JSON that ``evalkit parity --json`` prints); :func:`evalkit.parity.checks.compare_outputs` and
:func:`evalkit.parity.checks.adapter_effect` build these records themselves. See
:mod:`evalkit.parity.checks` for what each comparison means. Every key is always written.
"""

from __future__ import annotations

from typing import TypeAlias

from evalkit.record.sections import SectionModel

__all__ = ["PARITY", "AdapterChanges", "ItemDivergence", "OutputAgreement", "ParitySection", "ParitySummary"]

PARITY = "parity"


class ItemDivergence(SectionModel):
    """Where two completions of one item first differ (``""`` as a token: past the end of a completion)."""

    item_id: str
    position: int
    left_token: str
    right_token: str
    left: str
    right: str


class OutputAgreement(SectionModel):
    """Agreement between two sets of completions of the same items (e.g. ``hf`` and ``vllm``)."""

    left: str
    right: str
    n: int
    agreeing: int
    agreement_rate: float
    """``agreeing / n``; 1.0 when no item was compared."""
    divergences: list[ItemDivergence]


class AdapterChanges(SectionModel):
    """How many items an adapter changes against its bare base, per backend."""

    n: int
    changed: dict[str, int]
    """backend -> items whose completion differs from the base's."""
    no_op: bool
    """The adapter changed no item on some backend (it was likely not applied)."""


class ParitySummary(SectionModel):
    """Everything a parity run found."""

    n_items: int
    min_agreement: float
    backends: dict[str, OutputAgreement]
    """candidate -> HF vs vLLM."""
    merged: dict[str, OutputAgreement]
    """merged candidate -> the adapter through peft vs the merged weights (HF)."""
    adapters: dict[str, AdapterChanges]
    problems: list[str]
    """One line per finding a reader must act on."""


ParitySection: TypeAlias = ParitySummary
