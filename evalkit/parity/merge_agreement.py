"""Does the merged model answer like the adapter it was merged from? Read from the run itself.

A candidate with ``merged_from: ADAPTER`` is the adapter's weights folded into its base.
When the same run also evaluates that adapter (a candidate whose ``adapter:`` is the same
directory), both answered the same items with the same prompts, greedy, so their
completions can be compared item by item at no cost: no model runs again. The agreement
goes into ``sections["merge_agreement"]``, the report and the terminal; below
:data:`MIN_MERGE_AGREEMENT` it is also a warning, because a merge that changes answers is
a different model from the one the adapter's scores describe. ``parity: true`` goes
further (the adapter through peft on HF against the merged model, token by token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.tradeoffs import MERGE_AGREEMENT, DifferingItem, MergeAgreement
from evalkit.stages import register_stage

if TYPE_CHECKING:  # a stage's arguments, for annotations only
    from evalkit.models.backend import Backend
    from evalkit.progress import Progress
    from evalkit.stages import SuiteInputs

# Greedy decoding of the same weights should agree on every item; bf16 rounding of the
# merged sum can flip a near-tie now and then, so one item in a hundred is allowed.
MIN_MERGE_AGREEMENT = 0.99

# At most this many differing items are listed (the rest are counted).
_LISTED = 20


def _source_candidate(inputs: SuiteInputs, merged: str) -> str | None:
    """Return the candidate that applies the adapter ``merged`` was made from, if the run has one."""
    config = inputs.plans[merged].config
    assert config.merged_from is not None
    adapter = inputs.suite.resolve(config.merged_from).resolve()
    for name, plan in inputs.plans.items():
        variant = plan.variant
        if name != merged and variant is not None and variant.adapter is not None and \
                variant.adapter.resolve() == adapter:
            return name
    return None


def compare_completions(merged: CandidateResult, source: CandidateResult) -> MergeAgreement:
    """Compare two candidates' completions on the items both answered (up to 20 differing ones listed)."""
    theirs = {item.item_id: item.prediction for item in source.items}
    shared = [item for item in merged.items if item.item_id in theirs]
    differing = [item for item in shared if item.prediction != theirs[item.item_id]]
    return MergeAgreement(
        source=source.name,
        n=len(shared),
        agreeing=len(shared) - len(differing),
        agreement_rate=(len(shared) - len(differing)) / len(shared) if shared else None,
        differing=[DifferingItem(item_id=item.item_id, merged=item.prediction, source=theirs[item.item_id])
                   for item in differing[:_LISTED]],
    )


def agreement(merged: CandidateResult, source: CandidateResult) -> dict[str, Any]:
    """Return :func:`compare_completions`'s result in its JSON form (a ``merge_agreement`` entry).

    Returns:
        ``{"source", "n", "agreeing", "agreement_rate", "differing"}``; ``differing``
        lists up to 20 items as ``{"item_id", "merged", "source"}``.
    """
    return compare_completions(merged, source).model_dump(mode="json")


def describe(merged: str, entry: MergeAgreement) -> str:
    """One line for the terminal and the report: how often the merged model answered as its adapter."""
    if entry.agreement_rate is None:
        return f"{merged} and {entry.source} answered no item in common"
    return (f"{merged} gave the same completion as {entry.source} on {entry.agreeing} of "
            f"{entry.n} items ({entry.agreement_rate:.1%}, greedy)")


def agrees(entry: MergeAgreement) -> bool:
    """Return True when the merged model agreed with its adapter on at least :data:`MIN_MERGE_AGREEMENT`."""
    return entry.agreement_rate is not None and entry.agreement_rate >= MIN_MERGE_AGREEMENT


@register_stage("merge_agreement")
def record_merge_agreement(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend],
                           progress: Progress) -> None:
    """Run stage: add ``sections["merge_agreement"]`` for each merged candidate whose adapter also ran."""
    del backends  # nothing is generated: the run's completions are compared
    found: dict[str, dict[str, Any]] = {}
    evaluated = {c.name: c for c in run.candidates if c.status == "ok"}
    for name, plan in inputs.plans.items():
        if not plan.config.merged_from or name not in evaluated:
            continue
        source = _source_candidate(inputs, name)
        if source is None or source not in evaluated:
            continue
        entry = compare_completions(evaluated[name], evaluated[source])
        found[name] = entry.model_dump(mode="json")
        progress.note(describe(name, entry))
        if entry.agreement_rate is not None and not agrees(entry):
            run.warnings.append(
                f"merge: {describe(name, entry)}, below {MIN_MERGE_AGREEMENT:.0%}: the merged model is not "
                f"the model {source}'s scores describe; run `evalkit parity` to see where they diverge")
    if found:
        run.sections[MERGE_AGREEMENT] = found
