"""Baseline vs candidate, candidate by candidate: each metric paired by item id and compared; identity diffs.

:func:`compare_candidates` compares every candidate of a run with its baseline,
:func:`compare_runs` the candidates of two runs, and :func:`compare_pair` one pair of
candidates: each metric both sides measured is paired by item id
(:func:`metric_arrays`) and handed to :func:`evalkit.comparison.paired.compare_metric`,
which picks the paired test by the metric's declared kind and gives the verdict (the
rule is in :mod:`evalkit.comparison.paired`). The results are the types of
:mod:`evalkit.comparison.result` (re-exported here, as this module returns them). Across two
runs each pair also gets its identity diff (:func:`identity_diff`, below: what changed
besides the metrics).

A metric that ``regressed`` fails the run (exit 1). Whether an ``inconclusive`` drop
bar fails it is the suite's ``inconclusive:`` choice (default ``fail``, see
:mod:`evalkit.bars.evaluate`); an inconclusive metric that no bar names is reported, not gated.
:func:`set_standings` says which compared candidates are deployable, by the one rule
of :func:`evalkit.bars.verdict.run_verdict` (counted bars, every one passed, nothing
regressed), from the candidate run's bars.

Also here:

* What changed between two runs, per compared pair: the identity diff ``evalkit compare A B`` shows first
  (:func:`identity_diff`).
"""

from __future__ import annotations

import difflib
import json
import operator
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.bars.verdict import run_verdict
from evalkit.checks.sampling import is_rate_metric
from evalkit.comparison.paired import compare_metric, metric_kind, rng_for
from evalkit.comparison.result import (
    CandidateComparison,
    Comparison,
    IdentityChange,
    IdentityDiff,
    IdentityKind,
    MetricComparison,
    ThresholdPolicy,
)
from evalkit.errors import ConfigError
from evalkit.record.results import CandidateIdentity, CandidateResult, RunResult
from evalkit.record.run_facts import MetricKindsSection
from evalkit.record.sections import ResolvedSuiteSection
from evalkit.stages import register_stage

__all__ = [
    "CandidateComparison",
    "Comparison",
    "MetricArray",
    "MetricComparison",
    "compare_candidates",
    "compare_pair",
    "compare_runs",
    "comparison_stage",
    "declared_directions",
    "declared_kinds",
    "identity_diff",
    "metric_arrays",
    "metric_values",
    "prompt_text",
    "set_standings",
    "shown_value",
]


# What changed between two runs, per compared pair: the identity diff ``evalkit compare A B`` shows first.
#
# A pair compared across runs (:func:`evalkit.comparison.compare.compare_runs`) may differ in more
# than its metrics: another model or adapter, another prompt, other generation settings,
# other data, other library versions. :func:`identity_diff` lists every recorded fact
# that differs, from what each run recorded: the candidate's identity (model
# fingerprint, adapter hash, prompt hash, backend, engine), the run's dataset hash and
# evalkit version, and its ``resolved_suite`` section (generation settings, the
# candidate's device, dtype and options, named files' hashes, library versions, and the
# prompt templates, of which it gives a unified diff). A run made before runs recorded
# their resolved suite has only the first; what it cannot say is named in the notes.

_IDENTITY_KINDS: dict[str, IdentityKind] = {
    "model_source": "paths", "model_fingerprint": "model", "adapter": "paths", "adapter_hash": "adapter",
    "backend": "model", "prompt_hash": "prompt", "engine": "model",
}
_KIND_WORDS: dict[IdentityKind, str] = {
    "model": "model", "adapter": "adapter", "prompt": "prompt", "generation": "generation settings",
    "data": "data", "versions": "versions", "paths": "model/adapter paths",
}
_PROMPT_PARTS = ("system", "user", "expected", "few_shot")


def prompt_text(config: Mapping[str, Any], candidate: str) -> str | None:
    """Return a candidate's prompt templates as one text, from a recorded suite config; None if absent.

    The suite's ``prompt`` with the candidate's ``prompt:`` override applied (each part
    it sets replaces the suite's, as :func:`evalkit.prompting.prompt_for_candidate` does);
    the few-shot examples themselves are not part of it (their training file's hash is).
    """
    suite_prompt = config.get("prompt")
    if not isinstance(suite_prompt, Mapping):
        return None
    parts = dict(suite_prompt)
    for entry in config.get("candidates") or []:
        if isinstance(entry, Mapping) and entry.get("name") == candidate:
            override = entry.get("prompt")
            parts.update({k: v for k, v in (override or {}).items() if v is not None})
    return "".join(f"[{part}]\n{'(none)' if parts.get(part) is None else parts[part]}\n" for part in _PROMPT_PARTS)


def shown_value(value: str | None) -> str:
    """Return a recorded value as the text and the report show it: a SHA-256 cut to 12 digits, None as "absent"."""
    if value is None:
        return "absent"
    is_digest = len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    return value[:12] if is_digest else value


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)


def _record(run: RunResult) -> ResolvedSuiteSection | None:
    record: ResolvedSuiteSection | None = run.section("resolved_suite")
    return record


def _settings(run: RunResult, record: ResolvedSuiteSection | None, name: str) -> dict[str, tuple[IdentityKind, Any]]:
    """Return field -> (kind, value) of what a run recorded about how ``name`` ran, beyond its identity."""
    found: dict[str, tuple[IdentityKind, Any]] = {"dataset_hash": ("data", run.dataset_hash or None),
                                                  "versions.evalkit": ("versions", run.evalkit_version or None)}
    if record is None:
        return found
    found.update({f"generation.{key}": ("generation", value)
                  for key, value in (record.config.get("generation") or {}).items()})
    entry: Mapping[str, Any] = next((c for c in record.config.get("candidates") or [] if c.get("name") == name), {})
    found.update({f"candidate.{key}": ("generation", entry.get(key)) for key in ("dtype", "options", "constrain")})
    runtime = record.runtime.get(name)
    found.update({"runtime.device": ("generation", runtime.device if runtime else None),
                  "runtime.dtype": ("generation", runtime.dtype if runtime else None),
                  "limit": ("data", record.limit)})
    found.update({f"files.{file}": ("data", digest) for file, digest in record.files.items()})
    found.update({f"versions.{library}": ("versions", version) for library, version in record.versions.items()})
    return found


def identity_diff(before: RunResult, baseline: str, after: RunResult, candidate: str) -> IdentityDiff:
    """Return what differs between ``baseline`` of run ``before`` and ``candidate`` of run ``after``.

    Raises:
        KeyError: a candidate is not in its run (the caller has checked both).
        DataError: a run's resolved suite record is damaged.
    """
    changes: list[IdentityChange] = []
    notes: list[str] = []
    was, now = before.candidate(baseline).identity, after.candidate(candidate).identity
    if was is None or now is None:
        missing = before if was is None else after
        notes.append(f"run {missing.run_id} records no identity for its candidate: model, adapter and "
                     "prompt hashes not compared")
    else:
        for item in fields(CandidateIdentity):
            old, new = getattr(was, item.name), getattr(now, item.name)
            if old != new:
                changes.append(IdentityChange(_IDENTITY_KINDS[item.name], item.name, _text(old), _text(new)))
    records = _record(before), _record(after)
    old_settings, new_settings = _settings(before, records[0], baseline), _settings(after, records[1], candidate)
    for key in dict.fromkeys([*old_settings, *new_settings]):
        if (key not in old_settings or key not in new_settings) and None in records:
            continue  # on one side only because the other run records less: not a change
        kind = (old_settings.get(key) or new_settings[key])[0]
        old, new = old_settings.get(key, (kind, None))[1], new_settings.get(key, (kind, None))[1]
        if old != new:
            changes.append(IdentityChange(kind, key, _text(old), _text(new)))
    texts = [prompt_text(record.config, name) if record is not None else None
             for record, name in zip(records, (baseline, candidate), strict=True)]
    prompt_diff = ""
    for run, record in zip((before, after), records, strict=True):
        if record is None:
            notes.append(f"run {run.run_id} records no resolved suite (made before evalkit recorded one): "
                         "prompt text not recorded; generation settings, named files and library versions "
                         "not compared")
    if texts[0] is not None and texts[1] is not None and texts[0] != texts[1]:
        prompt_diff = "".join(difflib.unified_diff(
            texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
            fromfile=f"run {before.run_id}: {baseline} prompt", tofile=f"run {after.run_id}: {candidate} prompt"))
    elif texts[0] is not None and any(c.field == "prompt_hash" for c in changes):
        notes.append("the prompt templates are the same: the few-shot examples differ (the training data changed)")
    kinds = [kind for kind in _KIND_WORDS if any(change.kind == kind for change in changes)]
    return IdentityDiff(summary=_summary(kinds), changes=changes, prompt_diff=prompt_diff, notes=notes)


def _summary(kinds: list[IdentityKind]) -> str:
    if not kinds:
        return "identity unchanged"
    words = [_KIND_WORDS[kind] for kind in kinds]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed} changed"


if TYPE_CHECKING:  # a stage's arguments, for annotations only
    from evalkit.models.backend import Backend
    from evalkit.progress import Progress
    from evalkit.stages import SuiteInputs
    from evalkit.suite.config import SuiteConfig



@dataclass(frozen=True)
class MetricArray:
    """One metric of one candidate: the measured items' ids and values, in item order.

    Metrics of task items share one ``ids`` list object (so pairing two candidates
    evaluated on the same items costs one list comparison); benchmark metrics have
    their own ids.
    """

    ids: list[str]
    values: np.ndarray


def metric_arrays(result: CandidateResult) -> dict[str, MetricArray]:
    """Return every metric of a candidate as arrays (equal to ``result.values(metric)``).

    Built in one pass over the items; when every item carries the same metrics (the
    common case) the values come out as one matrix, so 10,000 items × many metrics
    cost milliseconds, not seconds.
    """
    arrays: dict[str, MetricArray] = {}
    items = result.items
    if items:
        ids = [item.item_id for item in items]
        names = tuple(items[0].scores)
        if all(tuple(item.scores) == names for item in items):
            value = operator.attrgetter("value")
            matrix = np.array([list(map(value, item.scores.values())) for item in items],
                              dtype=np.float64).reshape(len(items), len(names))
            arrays = {name: MetricArray(ids, matrix[:, column]) for column, name in enumerate(names)}
        else:
            columns: dict[str, np.ndarray] = {}
            for row, item in enumerate(items):
                for name, score in item.scores.items():
                    if name not in columns:
                        columns[name] = np.full(len(items), np.nan)
                    columns[name][row] = score.value
            for name, column in columns.items():
                present = ~np.isnan(column)
                if present.all():
                    arrays[name] = MetricArray(ids, column)
                else:
                    kept = np.flatnonzero(present)
                    arrays[name] = MetricArray([ids[i] for i in kept], column[kept])
    for name, per_item in result.item_values.items():
        arrays[name] = MetricArray(list(per_item), np.fromiter(per_item.values(), dtype=np.float64,
                                                               count=len(per_item)))
    return arrays


def metric_values(result: CandidateResult) -> dict[str, dict[str, float]]:
    """Return metric -> item id -> value for every metric of a candidate, in item order."""
    return {name: dict(zip(array.ids, array.values.tolist(), strict=True))
            for name, array in metric_arrays(result).items()}


def _pair(base: MetricArray, cand: MetricArray, same_ids: dict[tuple[int, int], bool]
          ) -> tuple[list[str], np.ndarray, np.ndarray]:
    # Same items in the same order (every metric of a run's task items): nothing to align.
    key = (id(base.ids), id(cand.ids))
    if key not in same_ids:
        same_ids[key] = base.ids is cand.ids or base.ids == cand.ids
    if same_ids[key]:
        return base.ids, base.values, cand.values
    position = {item_id: index for index, item_id in enumerate(cand.ids)}
    pairs = [(index, position[item_id]) for index, item_id in enumerate(base.ids) if item_id in position]
    if not pairs:
        return [], np.zeros(0), np.zeros(0)
    base_index, cand_index = (np.array(side) for side in zip(*pairs, strict=True))
    return [base.ids[i] for i in base_index], base.values[base_index], cand.values[cand_index]


def compare_pair(
    baseline: CandidateResult,
    candidate: CandidateResult,
    policy: ThresholdPolicy,
    seed: int = 0,
    metrics: Iterable[str] | None = None,
    *,
    baseline_arrays: Mapping[str, MetricArray] | None = None,
    continuous: Container[str] = (),
    kinds: Mapping[str, str] | None = None,
    directions: Mapping[str, bool] | None = None,
) -> CandidateComparison:
    """Compare every metric both candidates measured (or only ``metrics``).

    Items are paired by id; an item one side lacks (a failed judgment) is left out of
    that metric's comparison. ``baseline_arrays`` reuses the baseline's
    :func:`metric_arrays` when one baseline is compared with many candidates.
    ``continuous`` names metrics compared as continuous whatever their values (per-item
    rates over repeated samples, :func:`evalkit.checks.sampling.is_rate_metric`); ``kinds``
    gives the kind each check declared for its metrics (:func:`declared_kinds`), and
    ``directions`` the declared direction of those whose lower values are better
    (:func:`declared_directions`; a metric not named is higher-is-better).
    """
    base_table = baseline_arrays if baseline_arrays is not None else metric_arrays(baseline)
    cand_table = metric_arrays(candidate)
    wanted = list(metrics) if metrics is not None else list(base_table)
    comparison = CandidateComparison(candidate=candidate.name, baseline=baseline.name)
    same_ids: dict[tuple[int, int], bool] = {}
    for metric in wanted:
        if metric not in base_table or metric not in cand_table:
            continue
        ids, base, cand = _pair(base_table[metric], cand_table[metric], same_ids)
        if not ids:
            continue
        rng = rng_for(seed, baseline.name, candidate.name, metric)
        comparison.metrics[metric] = compare_metric(
            metric, ids, base, cand, policy.threshold_text(metric), rng,
            kind="continuous" if metric in continuous else metric_kind(metric, base, cand, (kinds or {}).get(metric)),
            higher_is_better=(directions or {}).get(metric, True),
        )
    return comparison


def compare_candidates(
    run: RunResult,
    suite: SuiteConfig | None = None,
    seed: int = 0,
    *,
    baseline: str | None = None,
    candidates: Sequence[str] | None = None,
    policy: ThresholdPolicy | None = None,
) -> Comparison:
    """Compare every candidate of a run with its baseline.

    Args:
        run: the run.
        suite: the suite, for its thresholds (default thresholds when None).
        seed: the bootstrap seed.
        baseline: the baseline candidate; default the run's.
        candidates: compare only these; default every evaluated candidate.
        policy: thresholds to use instead of the suite's.

    Raises:
        ConfigError: a named candidate is not in the run.
    """
    policy = policy or ThresholdPolicy.from_suite(suite)
    base_name = baseline or run.baseline
    comparison = Comparison(baseline=base_name, baseline_run_id=run.run_id, candidate_run_id=run.run_id,
                            seed=seed)
    if baseline is None and all(c.name != base_name for c in run.candidates):
        # A run of some candidates only (`--candidate lora`) may leave the baseline out.
        comparison.notes.append(f"baseline '{base_name}' was not run; nothing compared")
        return comparison
    base = _candidate(run, base_name)
    if base.status != "ok":
        comparison.notes.append(f"baseline '{base_name}' was skipped ({base.message}); nothing compared")
        return comparison
    names = list(candidates) if candidates else [c.name for c in run.candidates if c.name != base_name]
    base_arrays = metric_arrays(base)
    for name in names:
        other = _candidate(run, name)
        if other.status != "ok":
            comparison.notes.append(f"candidate '{name}' was skipped; not compared")
            continue
        comparison.candidates[name] = compare_pair(base, other, policy, seed, baseline_arrays=base_arrays,
                                                   continuous=_rate_metrics(run), kinds=declared_kinds(run),
                                                   directions=declared_directions(run))
    return comparison


@register_stage("comparison", final=True)
def comparison_stage(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Run stage: add the ``comparison`` section, every candidate against the baseline under the suite's thresholds.

    It runs after every stage that adds metrics (benchmarks, judges...), so they are compared too.
    """
    del backends, progress  # nothing is generated: the run's scores are compared
    run.set_section("comparison", compare_candidates(run, inputs.suite))


def compare_runs(
    baseline_run: RunResult,
    candidate_run: RunResult,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    policy: ThresholdPolicy | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare the candidates of ``candidate_run`` with those of ``baseline_run``.

    By default each candidate is compared with the candidate of the same name in the
    baseline run (last week's ``lora`` against today's). ``baseline`` and ``candidate``
    pick one pair instead; either defaults to the other's name. Each pair carries its
    identity diff, and each candidate its standing under ``candidate_run``'s bars
    (:func:`set_standings`).

    Raises:
        ConfigError: a named candidate is missing, or the runs share no candidate.
    """
    policy = policy or ThresholdPolicy()
    pairs: list[tuple[str, str]]
    if baseline or candidate:
        base_name = baseline or candidate
        cand_name = candidate or baseline
        assert base_name is not None and cand_name is not None
        pairs = [(base_name, cand_name)]
    else:
        baseline_names = {c.name for c in baseline_run.candidates if c.status == "ok"}
        pairs = [(c.name, c.name) for c in candidate_run.candidates
                 if c.status == "ok" and c.name in baseline_names]
        if not pairs:
            raise ConfigError(
                f"runs {baseline_run.run_id} and {candidate_run.run_id} share no evaluated candidate; "
                "pick one of each with --baseline NAME --candidate NAME"
            )
    comparison = Comparison(baseline=pairs[0][0] if len(pairs) == 1 else "",
                            baseline_run_id=baseline_run.run_id, candidate_run_id=candidate_run.run_id,
                            seed=seed)
    if baseline_run.dataset_hash and baseline_run.dataset_hash != candidate_run.dataset_hash:
        comparison.notes.append("the two runs used different dataset files; items are paired by id "
                                "and only ids present in both are compared")
    for base_name, cand_name in pairs:
        base, other = _candidate(baseline_run, base_name), _candidate(candidate_run, cand_name)
        for result, run in ((base, baseline_run), (other, candidate_run)):
            if result.status != "ok":
                raise ConfigError(f"candidate '{result.name}' was skipped in run {run.run_id}; "
                                  "pick an evaluated one")
        compared = compare_pair(base, other, policy, seed, continuous=_rate_metrics(baseline_run, candidate_run),
                                kinds=declared_kinds(baseline_run, candidate_run),
                                directions=declared_directions(baseline_run, candidate_run))
        compared.identity = identity_diff(baseline_run, base_name, candidate_run, cand_name)
        comparison.candidates[cand_name] = compared
    return set_standings(comparison, candidate_run)


def set_standings(comparison: Comparison, run: RunResult) -> Comparison:
    """Set each compared candidate's standing (``status``) from ``run``'s bars, and return the comparison.

    ``run`` is the run the candidates' results come from (run B of two, or the one run).
    The standing is the one :func:`evalkit.bars.verdict.run_verdict` gives the candidate in
    that run (deployable only with counted bars that all passed; ``no_bars`` without
    any), made ``blocked`` when a metric of this comparison regressed.
    """
    verdict = run_verdict(run)
    for name, compared in comparison.candidates.items():
        gate = verdict.candidate(name)
        compared.status = "blocked" if compared.regressions else gate.status if gate is not None else "no_bars"
    return comparison


def declared_kinds(*runs: RunResult) -> dict[str, str]:
    """Return metric -> the kind its check declared, from the runs' ``metric_kinds`` sections.

    The later run's declaration wins when two runs disagree (a check changed its kind).
    """
    kinds: dict[str, str] = {}
    for run in runs:
        declared: MetricKindsSection = run.section("metric_kinds") or {}
        kinds.update({metric: declaration.kind for metric, declaration in declared.items()})
    return kinds


def declared_directions(*runs: RunResult) -> dict[str, bool]:
    """Return metric -> ``higher_is_better`` as declared in the runs' ``metric_kinds`` sections.

    A check declares it when it registers, a benchmark when it scores (bits per byte:
    False); the later run's declaration wins, as in :func:`declared_kinds`.
    """
    directions: dict[str, bool] = {}
    for run in runs:
        declared: MetricKindsSection = run.section("metric_kinds") or {}
        directions.update({metric: declaration.higher_is_better for metric, declaration in declared.items()})
    return directions


def _rate_metrics(*runs: RunResult) -> set[str]:
    """Return the metrics that are per-item rates over repeated samples in any of ``runs``."""
    names = {metric for run in runs for c in run.candidates for metric in c.metric_names()}
    return {metric for metric in names if any(is_rate_metric(metric, run.section("sampling")) for run in runs)}


def _candidate(run: RunResult, name: str) -> CandidateResult:
    try:
        return run.candidate(name)
    except KeyError:
        names = ", ".join(c.name for c in run.candidates)
        raise ConfigError(f"run {run.run_id} has no candidate '{name}'; it has: {names}") from None
