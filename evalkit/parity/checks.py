"""Parity checks: HF vs vLLM, merged model vs adapter, and adapters that change nothing.

Three comparisons on the same items and the same prompts, all greedy:

* **backends**: each candidate's model variant through HF and through vLLM; the
  agreement rate (identical completions) and, for each disagreeing item, the first
  token where the two completions diverge;
* **merged**: a merged-model candidate (``merged_from: ADAPTER``) against the same
  adapter applied through peft on its base;
* **adapters**: each adapter candidate against its bare base model with the same
  prompts; an adapter that changes no output is flagged (the known failure of a
  LoRA silently not applied), through each backend.

:func:`run_parity` returns a :class:`~evalkit.parity.section.ParityReport`: the run's
``parity`` section. ``evalkit parity SUITE`` runs it on its own; a suite with
``parity: true`` runs it as a stage after generation.

Also in this module:

* Does the merged model answer like the adapter it was merged from? Read from the run itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.data.items import Item
from evalkit.models.backend import Backend, Message, ModelVariant, create_backend
from evalkit.models.sources import resolve_model
from evalkit.parity.section import (
    DEFAULT_MIN_AGREEMENT,
    AdapterChanges,
    ItemDivergence,
    OutputAgreement,
    ParityReport,
)
from evalkit.planning import plan_candidates
from evalkit.progress import Progress, SilentProgress
from evalkit.prompting import template_hash
from evalkit.record.results import CandidateResult, RunResult
from evalkit.record.run_facts import DifferingItem, MergeAgreement
from evalkit.stages import CandidatePlan, SuiteInputs, register_stage

Tokenize = Callable[[str], list[str]]


def first_divergence(left: Sequence[str], right: Sequence[str]) -> int | None:
    """Return the index of the first differing token of two token lists, or None if equal."""
    for position, (a, b) in enumerate(zip(left, right, strict=False)):
        if a != b:
            return position
    return None if len(left) == len(right) else min(len(left), len(right))


def compare_outputs(
    item_ids: Sequence[str],
    left: Sequence[str],
    right: Sequence[str],
    tokenize: Tokenize,
    names: tuple[str, str] = ("hf", "vllm"),
) -> OutputAgreement:
    """Compare two completions per item: agreement and the first diverging token of each disagreement.

    Args:
        item_ids: the items, in the order of ``left`` and ``right``.
        left: the first backend's completions.
        right: the second backend's completions.
        tokenize: splits a completion into token strings (the model's tokenizer).
        names: labels of the two sides.
    """
    divergences: list[ItemDivergence] = []
    for item_id, a, b in zip(item_ids, left, right, strict=True):
        if a == b:
            continue
        tokens_a, tokens_b = tokenize(a), tokenize(b)
        position = first_divergence(tokens_a, tokens_b)
        if position is None:  # same tokens, different text (whitespace the tokenizer drops)
            position = 0
        divergences.append(ItemDivergence(
            item_id=item_id,
            position=position,
            left_token=tokens_a[position] if position < len(tokens_a) else "",
            right_token=tokens_b[position] if position < len(tokens_b) else "",
            left=a,
            right=b,
        ))
    n, agreeing = len(item_ids), len(item_ids) - len(divergences)
    return OutputAgreement(left=names[0], right=names[1], n=n, agreeing=agreeing,
                           agreement_rate=agreeing / n if n else 1.0, divergences=divergences)


def adapter_effect(n: int, changed: dict[str, int]) -> AdapterChanges:
    """Return how an adapter changed ``n`` items against its bare base (``changed``: backend -> items).

    It is a no-op when it changed no item on some backend (it was likely not applied).
    """
    return AdapterChanges(n=n, changed=dict(changed), no_op=n > 0 and any(count == 0 for count in changed.values()))


class _Outputs:
    """Generates (once) each variant's completions for a prompt template, per backend."""

    def __init__(self, inputs: SuiteInputs, items: Sequence[Item], backends: dict[str, Backend]) -> None:
        self.inputs = inputs
        self.items = items
        self.backends = backends
        self._cache: dict[tuple[str, Path, Path | None, str], list[str]] = {}

    def backend(self, name: str) -> Backend:
        if name not in self.backends:
            self.backends[name] = create_backend(name)
        return self.backends[name]

    def conversations(self, plan: CandidatePlan) -> list[list[Message]]:
        dataset = self.inputs.suite.resolve(self.inputs.suite.dataset.path)
        return [plan.template.messages(item.fields, f"{dataset}:{item.line}") for item in self.items]

    def key(self, backend: str, variant: ModelVariant, plan: CandidatePlan) -> tuple[str, Path, Path | None, str]:
        return (backend, variant.model.path, variant.adapter, template_hash(plan.template))

    def get(self, backend: str, variant: ModelVariant, plan: CandidatePlan) -> list[str]:
        key = self.key(backend, variant, plan)
        if key not in self._cache:
            generation = self.inputs.suite.generation
            self._cache[key] = self.backend(backend).generate(variant, self.conversations(plan), generation)
        return self._cache[key]

    def prefetch_vllm(self, requests: list[tuple[ModelVariant, CandidatePlan]]) -> None:
        """Generate every vLLM request of one base in one engine call (base and adapters batched)."""
        todo = [(v, p) for v, p in requests if self.key("vllm", v, p) not in self._cache]
        backend = self.backend("vllm")
        generate_many = getattr(backend, "generate_many", None)
        if not todo or generate_many is None:
            return
        outputs = generate_many([(v, self.conversations(p)) for v, p in todo], self.inputs.suite.generation)
        for (variant, plan), texts in zip(todo, outputs, strict=True):
            self._cache[self.key("vllm", variant, plan)] = texts


def _bare(variant: ModelVariant) -> ModelVariant:
    return replace(variant, adapter=None, adapter_name=None)


def _merged_source(inputs: SuiteInputs, plans: Sequence[CandidatePlan], plan: CandidatePlan) -> ModelVariant | None:
    """Return base + adapter (through peft) that a merged candidate was made from, if known."""
    # torch and transformers: loaded only here
    from evalkit.models.hf import adapter_base_model

    assert plan.config.merged_from is not None and plan.variant is not None
    adapter = inputs.suite.resolve(plan.config.merged_from)
    for other in plans:
        if other.variant is not None and other.variant.adapter == adapter:
            return other.variant
    base = adapter_base_model(adapter)
    if base is None:
        return None
    model = resolve_model(base, adapter)
    return ModelVariant(model=model, adapter=adapter, adapter_name=f"{plan.config.name}-source",
                        dtype=plan.variant.dtype)


def run_parity(
    inputs: SuiteInputs,
    *,
    limit: int | None = None,
    backends: dict[str, Backend] | None = None,
    progress: Progress | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> ParityReport:
    """Run the three parity comparisons on a suite's candidates.

    Args:
        inputs: the suite's loaded inputs (:func:`evalkit.stages.load_inputs`).
        limit: use only the first N items.
        backends: backends already loaded (``hf``, ``vllm``), reused and extended; the
            caller closes them. Default: created here and closed before returning.
        progress: where progress goes.
        min_agreement: agreement below this is listed in ``problems``.

    Raises:
        BackendUnavailable: vLLM is not installed.
        ModelError: a model or adapter fails to load.
    """
    # Imported here: the runner imports this module for its stage on every run, and a
    # run without `parity: true` must not pay for torch.
    from evalkit.models.hf import load_tokenizer

    progress = progress or SilentProgress()
    items = inputs.items[:limit] if limit else inputs.items
    owned = backends is None
    outputs = _Outputs(inputs, items, backends if backends is not None else {})
    # A run hands its plans on; the parity command plans here (planning never trains).
    planned = list(inputs.plans.values()) or plan_candidates(inputs)
    plans = [p for p in planned if p.variant is not None]
    for hosted in [p for p in plans if p.variant is not None and p.variant.model.hosted]:
        progress.note(f"parity: skipped {hosted.config.name}: a hosted model has no weights here to run "
                      "through HF and vLLM")
    plans = [p for p in plans if p.variant is not None and not p.variant.model.hosted]
    report = ParityReport(n_items=len(items), min_agreement=min_agreement, backends={}, merged={}, adapters={})
    item_ids = [item.id for item in items]
    try:
        # Every vLLM generation first, grouped per base: one engine call per base model.
        requests: list[tuple[ModelVariant, CandidatePlan]] = []
        for plan in plans:
            assert plan.variant is not None
            requests.append((plan.variant, plan))
            if plan.variant.adapter is not None:
                requests.append((_bare(plan.variant), plan))
        progress.start("parity: vLLM", len(requests))
        outputs.prefetch_vllm(requests)
        progress.finish()
        progress.start("parity: HF and comparisons", len(plans))
        for plan in plans:
            variant = plan.variant
            assert variant is not None
            tokenizer = load_tokenizer(variant.model.path)

            def tokenize(text: str, tokenizer: Any = tokenizer) -> list[str]:
                return [str(t) for t in tokenizer.tokenize(text)]

            name = plan.config.name
            hf = outputs.get("hf", variant, plan)
            vllm = outputs.get("vllm", variant, plan)
            report.backends[name] = compare_outputs(item_ids, hf, vllm, tokenize)
            if variant.adapter is not None:
                changed = {backend: sum(a != b for a, b in zip(own, outputs.get(backend, _bare(variant), plan),
                                                               strict=True))
                           for backend, own in (("hf", hf), ("vllm", vllm))}
                report.adapters[name] = adapter_effect(len(items), changed)
            if plan.config.merged_from:
                source = _merged_source(inputs, plans, plan)
                if source is not None:
                    through_peft = outputs.get("hf", source, plan)
                    report.merged[name] = compare_outputs(item_ids, through_peft, hf, tokenize,
                                                          names=("peft_adapter", "merged"))
            progress.advance(1)
        progress.finish()
    finally:
        if owned:
            for loaded in outputs.backends.values():
                loaded.close()
    return report


@register_stage("parity")
def parity_stage(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Run stage: when the suite sets ``parity: true``, add ``sections["parity"]`` and warnings."""
    if not getattr(inputs.suite, "parity", False):
        return
    report = run_parity(inputs, backends=backends, progress=progress)
    run.set_section("parity", report)
    run.warnings.extend(f"parity: {problem}" for problem in report.problems)


# Does the merged model answer like the adapter it was merged from? Read from the run itself.
#
# A candidate with ``merged_from: ADAPTER`` is the adapter's weights folded into its base.
# When the same run also evaluates that adapter (a candidate whose ``adapter:`` is the same
# directory), both answered the same items with the same prompts, greedy, so their
# completions can be compared item by item at no cost: no model runs again. The agreement
# goes into ``sections["merge_agreement"]``, the report and the terminal; below
# :data:`MIN_MERGE_AGREEMENT` it is also a warning, because a merge that changes answers is
# a different model from the one the adapter's scores describe. ``parity: true`` goes
# further (the adapter through peft on HF against the merged model, token by token).

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
    evaluated = {c.name: c for c in run.candidates if c.status == "ok"}
    for name, plan in inputs.plans.items():
        if not plan.config.merged_from or name not in evaluated:
            continue
        source = _source_candidate(inputs, name)
        if source is None or source not in evaluated:
            continue
        entry = compare_completions(evaluated[name], evaluated[source])
        run.set_section_entry("merge_agreement", name, entry)
        progress.note(describe(name, entry))
        if entry.agreement_rate is not None and not agrees(entry):
            run.warnings.append(
                f"merge: {describe(name, entry)}, below {MIN_MERGE_AGREEMENT:.0%}: the merged model is not "
                f"the model {source}'s scores describe; run `evalkit parity` to see where they diverge")
