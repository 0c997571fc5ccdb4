"""The ``parity`` section: HF vs vLLM, merged model vs adapter, and adapters that change nothing.

Written by the ``parity`` stage and printed by ``evalkit parity --json``;
:func:`evalkit.parity.checks.compare_outputs` and :func:`evalkit.parity.checks.adapter_effect`
build these records themselves. See
:mod:`evalkit.parity.checks` for what each comparison means. Every key is always written.
"""

from __future__ import annotations

from typing import TypeAlias

from pydantic import computed_field

from evalkit.record.sections import SectionModel

__all__ = ["DEFAULT_MIN_AGREEMENT", "AdapterChanges", "ItemDivergence", "OutputAgreement", "ParityReport",
           "ParitySection"]



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


DEFAULT_MIN_AGREEMENT = 0.9


class ParityReport(SectionModel):
    """Everything a parity run found: what :func:`evalkit.parity.checks.run_parity` returns and the run stores.

    Attributes:
        n_items: items each comparison used.
        min_agreement: the agreement rate under which a gap is reported as a problem.
        backends: candidate -> HF vs vLLM.
        merged: merged candidate -> the adapter through peft vs the merged weights (HF).
        adapters: adapter candidate -> its effect against the base.
    """

    # Every key has been written since parity was added: none is optional, a missing one is damage.
    n_items: int
    min_agreement: float
    backends: dict[str, OutputAgreement]
    merged: dict[str, OutputAgreement]
    adapters: dict[str, AdapterChanges]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def problems(self) -> list[str]:
        """One line per finding a reader must act on (no-op adapters, large gaps); written with the section."""
        found = [
            f"adapter candidate '{name}' changed no output against its base "
            f"({', '.join(b for b, c in effect.changed.items() if c == 0)}): is the adapter applied?"
            for name, effect in self.adapters.items()
            if effect.no_op
        ]
        for label, comparisons in (("HF vs vLLM", self.backends), ("peft adapter vs merged", self.merged)):
            for name, comparison in comparisons.items():
                if comparison.agreement_rate < self.min_agreement:
                    found.append(
                        f"{label} parity for '{name}' is {comparison.agreement_rate:.0%} "
                        f"(below {self.min_agreement:.0%}) on {comparison.n} items"
                    )
        return found


ParitySection: TypeAlias = ParityReport
