"""The run stage: judge every candidate's predictions with the suite's ``judges:``, keeping transcripts.

Pointwise, each judged item gets ``ItemResult.scores["judge.<rubric>.<criterion>"] =
Score(value 1..5, reason=the judge's reasoning)``; pairwise, each non-baseline
candidate's item gets ``judge.<rubric>.preference`` (1 win, 0.5 tie, 0 loss, averaged
over both orders). An item whose judgment failed is scored as a failure (the minimum,
or a loss) and counted (see :mod:`evalkit.judges.section`).
``run.sections["judges"][rubric]`` holds the judge, the mode, the calibration against
human labels, error and failure counts, per-candidate criterion means with their
spread, and in pairwise mode win rates (see notes in docs/judges.md). An API judge's
entry also has ``usage``: its requests, the tokens the API reported, latency and money
from the price table (:meth:`evalkit.usage.stage.RequestTally.summary`; the suite's ``prices:``
may name the entry as ``judge:<name>``, else a glob over the judge's model matches).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.checks import Score
from evalkit.errors import ConfigError
from evalkit.judges.calibration import (
    JudgeOutcome,
    JudgeRunner,
    JudgeTally,
    JudgeTask,
    PairedVerdict,
    RepeatedJudgment,
    calibrate,
    combine_orders,
    combine_repeats,
    count_outcome,
    is_calibrated,
    judgment_cache,
    load_labels,
    position_consistency,
    rotated_rubric,
    self_consistency,
    summarise_pairwise,
)
from evalkit.judges.providers import Judgment, PairwiseJudgment, create_client
from evalkit.judges.rubric import SCALE, Rubric, load_rubric, pairwise_messages, pointwise_messages
from evalkit.judges.section import JudgeEntry, JudgeSpec, failed_reason, failure_entry
from evalkit.progress import Progress
from evalkit.prompting import Message
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.stages import register_stage
from evalkit.usage.stage import RequestTally, find_price

if TYPE_CHECKING:
    from evalkit.models.backend import Backend
    from evalkit.stages import SuiteInputs

PREFERENCE = "preference"


def metric_name(key: str, criterion: str) -> str:
    """Return the flat metric name ``judge.<key>.<criterion>``."""
    return f"judge.{key}.{criterion}"


def criterion_stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return ``{"mean", "std", "n"}`` (sample std; 0 for one value, None for none)."""
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _judged_items(candidate: CandidateResult, limit: int | None) -> list[ItemResult]:
    return candidate.items[:limit] if limit is not None else list(candidate.items)


def _pointwise_task(rubric: Rubric, item: ItemResult, where: str, repeat: int = 0) -> JudgeTask:
    # Each repeat lists the criteria in another order; the repeat number keys its cache entry.
    shown = rotated_rubric(rubric, repeat)
    messages = pointwise_messages(shown, item.fields, item.prediction, item.expected, where)
    return JudgeTask("pointwise", messages, (item.fields, item.expected, item.prediction, repeat))


def judge_pointwise(spec: JudgeSpec, rubric: Rubric, runner: JudgeRunner, run: RunResult,
                    progress: Progress) -> tuple[dict[str, Any], JudgeTally]:
    """Score every candidate's items; return the section's per-candidate and error parts."""
    key = spec.name or rubric.name
    per_candidate: dict[str, Any] = {}
    errors: dict[str, int] = {}
    transcripts: dict[str, dict[str, list[dict[str, Any]]]] = {}
    repeated_by_candidate: dict[str, list[tuple[str, RepeatedJudgment]]] = {}
    failures: dict[str, Any] = {}
    tally = JudgeTally()
    k = spec.repeats
    for candidate in run.candidates:
        if candidate.status != "ok":
            continue
        items = _judged_items(candidate, spec.limit)
        tasks = [_pointwise_task(rubric, item, f"{candidate.name} item {item.item_id}", repeat)
                 for item in items for repeat in range(k)]
        progress.start(f"judge {rubric.name}: {candidate.name}", len(tasks))
        outcomes = runner.run(tasks, progress.advance)
        progress.finish()
        for outcome in outcomes:
            count_outcome(tally, outcome)
        judgments = [o.judgment if isinstance(o.judgment, Judgment) else None for o in outcomes]
        repeated = combine_repeats(judgments, k, rubric.criterion_names)
        shown = transcripts.setdefault(candidate.name, {})
        for index, (item, combined) in enumerate(zip(items, repeated, strict=True)):
            shown[item.item_id] = [
                transcript(f"repeat {r + 1} of {k}" if k > 1 else "pointwise", tasks[index * k + r].messages,
                           judgments[index * k + r], outcomes[index * k + r].error) for r in range(k)]
            if combined.judgment is not None:
                for criterion, value in combined.judgment.scores.items():
                    item.scores[metric_name(key, criterion)] = Score(value=value, reason=combined.judgment.reasoning)
            else:  # never dropped: the criterion's minimum, with why (evalkit.judges.section)
                why = failed_reason(next((o.error for o in outcomes[index * k:(index + 1) * k] if o.error), ""))
                for criterion in rubric.criterion_names:
                    item.scores[metric_name(key, criterion)] = Score(value=float(SCALE[0]), reason=why)
        repeated_by_candidate[candidate.name] = [(i.item_id, r) for i, r in zip(items, repeated, strict=True)]
        errors[candidate.name] = sum(r.judgment is None for r in repeated)
        failures[candidate.name] = failure_entry(len(items), errors[candidate.name], spec.max_failures)
        values = {c: [i.scores[metric_name(key, c)].value for i in items if metric_name(key, c) in i.scores]
                  for c in rubric.criterion_names}
        per_candidate[candidate.name] = {c: {**criterion_stats(v), "n_failed": errors[candidate.name]}
                                         for c, v in values.items() if v}
    results: dict[str, Any] = {"per_candidate": per_candidate, "errors": errors, "failures": failures,
                               "transcripts": transcripts}
    if k > 1:
        results["consistency"] = self_consistency(repeated_by_candidate, rubric.criterion_names, k,
                                                  spec.min_consistency)
    return results, tally


def _verdict(outcome: JudgeOutcome) -> PairwiseJudgment | None:
    return outcome.judgment if isinstance(outcome.judgment, PairwiseJudgment) else None


def judge_pairwise(spec: JudgeSpec, rubric: Rubric, runner: JudgeRunner, run: RunResult,
                   progress: Progress) -> tuple[dict[str, Any], JudgeTally]:
    """Compare every candidate with the baseline on each item, in both orders."""
    key = spec.name or rubric.name
    baseline = run.candidate(run.baseline) if any(c.name == run.baseline for c in run.candidates) else None
    if baseline is None or baseline.status != "ok":
        raise ConfigError(f"pairwise judging with {rubric.name} needs the baseline '{run.baseline}' to have run")
    baseline_by_id = {item.item_id: item for item in baseline.items}
    pairwise: dict[str, Any] = {}
    per_candidate: dict[str, Any] = {}
    errors: dict[str, int] = {}
    transcripts: dict[str, dict[str, list[dict[str, Any]]]] = {}
    audited: dict[str, list[tuple[str, PairedVerdict]]] = {}
    failures: dict[str, Any] = {}
    tally = JudgeTally()
    metric = metric_name(key, PREFERENCE)
    for candidate in run.candidates:
        if candidate.status != "ok" or candidate.name == baseline.name:
            continue
        items = [i for i in _judged_items(candidate, spec.limit) if i.item_id in baseline_by_id]
        tasks: list[JudgeTask] = []
        for item in items:
            other = baseline_by_id[item.item_id].prediction
            where = f"{candidate.name} vs {baseline.name} item {item.item_id}"
            for shown_a, shown_b in ((item.prediction, other), (other, item.prediction)):
                messages = pairwise_messages(rubric, item.fields, shown_a, shown_b, item.expected, where)
                tasks.append(JudgeTask("pairwise", messages, (item.fields, item.expected, shown_a, shown_b, 0)))
        progress.start(f"judge {rubric.name}: {candidate.name} vs {baseline.name}", len(tasks))
        outcomes = runner.run(tasks, progress.advance)
        progress.finish()
        verdicts: list[PairedVerdict] = []
        audited[candidate.name] = []
        shown = transcripts.setdefault(candidate.name, {})
        failed = 0
        for index, item in enumerate(items):
            pair = outcomes[2 * index : 2 * index + 2]
            for outcome in pair:
                count_outcome(tally, outcome)
            first, second = _verdict(pair[0]), _verdict(pair[1])
            shown[item.item_id] = [
                transcript(label, tasks[2 * index + n].messages, judged, pair[n].error)
                for n, (label, judged) in enumerate((("candidate shown as A", first), ("baseline shown as A", second)))]
            if first is None or second is None:  # a loss, with why (evalkit.judges.section)
                failed += 1
                item.scores[metric] = Score(value=0.0, reason=failed_reason(pair[0].error or pair[1].error))
                continue
            verdict = combine_orders(first.winner, second.winner)
            verdicts.append(verdict)
            audited[candidate.name].append((item.item_id, verdict))
            outcome_text = ("order-inconsistent, counted as a tie; " if verdict.inconsistent else "")
            reason = (f"{outcome_text}candidate shown first: {first.winner} ({first.reasoning}); "
                      f"baseline shown first: {second.winner} ({second.reasoning})")
            item.scores[metric] = Score(value=verdict.preference, reason=reason)
        errors[candidate.name] = failed
        failures[candidate.name] = failure_entry(len(items), failed, spec.max_failures)
        pairwise[candidate.name] = summarise_pairwise(verdicts)
        preferences = [i.scores[metric].value for i in items if metric in i.scores]
        if preferences:
            per_candidate[candidate.name] = {PREFERENCE: {**criterion_stats(preferences), "n_failed": failed}}
    return {"per_candidate": per_candidate, "errors": errors, "failures": failures, "pairwise": pairwise,
            "transcripts": transcripts,
            "consistency": position_consistency(audited, spec.min_consistency)}, tally


def suite_calibration(spec: JudgeSpec, rubric: Rubric, runner: JudgeRunner, inputs: SuiteInputs,
                      progress: Progress) -> tuple[dict[str, Any] | None, str | None]:
    """Measure the judge against the labels; return the section entry and a warning, if any."""
    suite = inputs.suite
    labels = suite.resolve(spec.labels) if spec.labels else rubric.labels_path()
    if labels is None:
        if spec.min_kappa is None:
            return None, None
        entry = {"kappa": {}, "calibrated": False, "min_kappa": spec.min_kappa, "n": 0}
        return entry, (f"judge {spec.judge.label()} on {rubric.name} is uncalibrated: min_kappa is set but "
                       "there are no human labels; add `labels:` to the rubric or the judge entry")
    examples = load_labels(labels, rubric)
    progress.start(f"judge {rubric.name}: calibration", len(examples))
    result = calibrate(examples, runner, on_done=progress.advance)
    progress.finish()
    kappas = result.kappas()
    calibrated = is_calibrated(kappas, rubric.criterion_names, spec.min_kappa)
    entry = {
        "kappa": kappas, "calibrated": calibrated, "min_kappa": spec.min_kappa, "n": result.n,
        "errors": result.errors, "agreement": {c: a.model_dump(mode="json") for c, a in result.criteria.items()},
    }
    warning = None
    if not calibrated:
        shown = ", ".join(f"{c} {kappas[c]:.2f}" if c in kappas else f"{c} undefined" for c in rubric.criterion_names)
        warning = (f"judge {spec.judge.label()} on {rubric.name} is uncalibrated (kappa {shown}; "
                   f"min_kappa {spec.min_kappa}): bars on its scores do not count")
    return entry, warning


@register_stage("judges")
def run_judges(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """The ``judges`` run stage; see the module docstring."""
    suite = inputs.suite
    specs: list[JudgeSpec] = list(suite.judges)
    if not specs:
        return
    keys: set[str] = set()
    with judgment_cache() as cache:
        for spec in specs:
            rubric = load_rubric(suite.resolve(spec.rubric))
            key = spec.name or rubric.name
            if key in keys:
                raise ConfigError(f"{suite.source}: judges: two entries are named '{key}'; give one a "
                                  "`name:` of its own (results and metrics are keyed by it)")
            keys.add(key)
            client = create_client(spec.judge, backends)
            started = time.perf_counter()
            try:
                runner = JudgeRunner(client, spec.judge, rubric, cache)
                judged = judge_pointwise if spec.mode == "pointwise" else judge_pairwise
                results, tally = judged(spec, rubric, runner, run, progress)
                calibration, warning = suite_calibration(spec, rubric, runner, inputs, progress)
            finally:
                client.close()
            judge_info: dict[str, Any] = {"provider": spec.judge.provider, "model": spec.judge.model}
            if spec.judge.base_url:
                judge_info["base_url"] = spec.judge.base_url
            written: dict[str, Any] = {"rubric": rubric.name, "judge": judge_info, "mode": spec.mode,
                                       "calibration": calibration, **results, "tally": tally.model_dump(mode="json")}
            usage = getattr(client, "usage", None)
            if isinstance(usage, RequestTally):  # API judges count what they were billed
                price = find_price(f"judge:{key}", spec.judge.model, suite.prices)
                written["usage"] = usage.summary(price, time.perf_counter() - started)
            # Through the schema: the section holds exactly the keys JudgeEntry describes.
            entry = JudgeEntry.model_validate(written)
            run.set_section_entry("judges", key, entry, only_set=True)
            if warning:
                run.warnings.append(warning)
            consistency = entry.consistency
            if consistency is not None and consistency.below:
                rates = ", ".join(f"{c} {consistency.rate[c] or 0.0:.2f}" for c in consistency.below)
                run.warnings.append(f"judge {spec.judge.label()} on {key} is below min_consistency "
                                    f"{spec.min_consistency} ({consistency.kind} consistency: {rates}): "
                                    "bars on those scores do not count")
            if tally.errors:
                exceeded = sorted(c for c, f in entry.failures.items() if f.exceeded)
                beyond = (f"; beyond max_failures {spec.max_failures:.0%} for {', '.join(exceeded)}: "
                          "bars on this judge fail" if exceeded else "")
                run.warnings.append(
                    f"judge {spec.judge.label()} on {key}: {tally.errors} of {tally.tasks} judgments "
                    f"failed and are scored as failures{beyond} (first: {tally.error_examples[0]})")


# What a judge was asked and what it answered, kept per judged item for review.
MAX_MESSAGE_CHARS = 4000


def clip_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut here; {len(text):,} characters in all]"


def transcript(label: str, messages: Sequence[Message], judgment: Judgment | PairwiseJudgment | None,
               error: str = "") -> dict[str, Any]:
    """Return one judged question as stored in the section.

    Args:
        label: which question this was (``repeat 2``, ``candidate shown as A``...).
        messages: the exact messages sent to the judge.
        judgment: what came back, or None when the judgment failed.
        error: the failure's message, when it failed.
    """
    if judgment is None:
        reply = f"(no judgment: {error})" if error else "(no judgment)"
    else:
        reply = judgment.raw or judgment.reasoning
    return {"label": label,
            "messages": [{"role": m["role"], "content": clip_text(m["content"])} for m in messages],
            "reply": clip_text(reply)}
