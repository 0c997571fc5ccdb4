"""How far a judge agrees with people and with itself, and how its judgments are obtained robustly.

The numbers that make a judge worth trusting come from its agreement with people
(:func:`calibrate`). A labels file is JSONL, one human-scored judgment a line::

    {"id": "fmt-01", "item": {"instruction": "...", "input": "..."},
     "prediction": "...", "reference": "...", "scores": {"format": 5, "accuracy": 4, "style": 5}}

Per criterion, against the human scores:

* weighted Cohen's kappa (quadratic weights over the fixed categories 1..5, equal to
  ``sklearn.metrics.cohen_kappa_score(h, j, labels=[1..5], weights="quadratic")``);
* Spearman's rank correlation (``scipy.stats.spearmanr``), on the judge's unrounded scores;
* exact agreement and within-one agreement;
* self-consistency: the mean standard deviation of the judge's score when the same
  item is judged again (0 for a deterministic judge such as the local one).

A probability-weighted judge score (3.7) is rounded to the nearest level for kappa and
the agreement rates, and kept as is for Spearman.

Also here:

* Obtaining judgments robustly: bounded retries, backoff, a concurrency limit, the cache (:class:`JudgeRunner`).
* How far a judge agrees with itself: position consistency and self-consistency (:func:`position_consistency`,
  :func:`self_consistency`).
* Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden (:func:`combine_orders`,
  :func:`summarise_pairwise`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from evalkit.errors import DataError
from evalkit.files.home import evalkit_home, json_digest
from evalkit.files.yaml_source import json_objects, refuse_non_regular_file
from evalkit.judges.providers import JudgeClient, Judgment, PairwiseJudgment, TransientJudgeError, UnjudgeableItem
from evalkit.judges.rubric import PROMPT_FORMAT, SCALE, MalformedJudgment, Rubric
from evalkit.judges.section import CriterionAgreement, JudgeClientSpec
from evalkit.judges.section import JudgeTally as JudgeTally
from evalkit.models.options import redact
from evalkit.prompting import Message
from evalkit.store.cache import JsonCache

# Obtaining judgments robustly: bounded retries, backoff, a concurrency limit, the cache.
#
# For each task (a rendered prompt):
#
# * a cached judgment for the same judge, rubric, item and prediction is used as is;
# * a transient failure (429, 5xx, timeout, unreadable body) is retried after a delay
#   that doubles each time (with jitter, at least what ``Retry-After`` asked, capped at
#   30 s), at most ``max_retries`` times;
# * a malformed or off-scale judgment is asked again, with the judge shown its reply and
#   told what was wrong, at most ``parse_retries`` times;
# * an item the judge cannot take (its prompt too long) is an error at once;
# * what still fails becomes a judge *error*: counted, its message kept, never a score.
#
# At most ``concurrency`` requests are in flight (a thread pool of that size; a local
# judge runs inline). A :class:`~evalkit.errors.JudgeError` (bad key, unknown model)
# stops everything at once: every further request would fail the same way.

MAX_BACKOFF_S = 30.0
TaskKind = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class JudgeTask:
    """One question for the judge.

    Attributes:
        kind: ``pointwise`` or ``pairwise``.
        messages: the rendered prompt.
        key_parts: what identifies the question besides the judge and the rubric
            (item fields, reference, prediction(s), repeat number).
    """

    kind: TaskKind
    messages: list[Message]
    key_parts: tuple[Any, ...]


@dataclass
class JudgeOutcome:
    """What came of one task: a judgment, or an error message (never both)."""

    judgment: Judgment | PairwiseJudgment | None = None
    error: str = ""
    request_retries: int = 0
    malformed_retries: int = 0
    cached: bool = False


def count_outcome(tally: JudgeTally, outcome: JudgeOutcome) -> None:
    """Count one outcome into ``tally`` (the judges section's counts of a batch of tasks)."""
    tally.tasks += 1
    tally.request_retries += outcome.request_retries
    tally.malformed_retries += outcome.malformed_retries
    tally.cache_hits += int(outcome.cached)
    if outcome.judgment is None:
        tally.errors += 1
        if len(tally.error_examples) < 5:
            tally.error_examples.append(outcome.error)


def _gave_up(outcome: JudgeOutcome, retries: int, limit: int, failure: str, exc: Exception) -> bool:
    """Say whether ``retries`` already made use up ``limit``; if so, record the final error.

    The attempt that just failed is number ``retries + 1``, which the message counts.
    """
    if retries < limit:
        return False
    outcome.error = redact(f"{failure} {retries + 1} times; last: {exc}")
    return True


def backoff_delay(attempt: int, base: float, retry_after: float | None, rng: random.Random) -> float:
    """Return the wait before retry number ``attempt`` (1-based)."""
    delay = float(min(MAX_BACKOFF_S, base * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF_S))
    return delay


def repair_turns(reply: str, problem: str, kind: TaskKind) -> list[Message]:
    """Return the turns that show the judge its unusable reply and ask again."""
    wanted = "the JSON object with every score" if kind == "pointwise" else 'the JSON object with "winner"'
    return [
        {"role": "assistant", "content": reply or "(empty reply)"},
        {"role": "user", "content": f"That reply could not be used: {problem}. Answer again with only {wanted}."},
    ]


CACHE_FILE = "judgments.sqlite"


def judgment_cache(path: Path | None = None) -> JsonCache[Judgment | PairwiseJudgment]:
    """Open the judgment cache: ``judgments.sqlite`` in evalkit's home (or ``path``).

    A judgment is keyed by what determines it (:meth:`JudgeRunner.key`): the judge
    (provider, model, endpoint or weights fingerprint), the rubric's content hash, the
    item, the reference, the prediction, the mode and order, and the repeat number
    (self-consistency asks the same question again on purpose). Only successful judgments
    are stored: an error is asked again next time. Nothing secret is stored: keys never
    reach a judge's identity.

    Raises:
        StoreError: the file cannot be opened.
    """
    return JsonCache(Judgment | PairwiseJudgment, path or evalkit_home() / CACHE_FILE, "judgment cache")


class JudgeRunner:
    """Runs tasks through a judge client with retries, the concurrency limit and the cache."""

    def __init__(
        self,
        client: JudgeClient,
        spec: JudgeClientSpec,
        rubric: Rubric,
        cache: JsonCache[Judgment | PairwiseJudgment] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int = 0,
    ) -> None:
        """Bind a client, its settings, the rubric and (optionally) a cache."""
        self.client = client
        self.spec = spec
        self.rubric = rubric
        self.cache = cache
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._rubric_hash = rubric.content_hash()

    def key(self, task: JudgeTask) -> str:
        """Return the cache key of a task for this judge and rubric."""
        # The prompt format is part of the key: a judgment asked with the text enclosed
        # otherwise is another question.
        return json_digest((task.kind, self.client.identity, self._rubric_hash, PROMPT_FORMAT, *task.key_parts))

    def _ask(self, task: JudgeTask, messages: list[Message]) -> Judgment | PairwiseJudgment:
        if task.kind == "pointwise":
            return self.client.pointwise(messages, self.rubric)
        return self.client.pairwise(messages)

    def attempt(self, task: JudgeTask) -> JudgeOutcome:
        """Obtain one judgment with bounded retries; see the module docstring."""
        outcome = JudgeOutcome()
        messages = list(task.messages)
        while True:
            try:
                outcome.judgment = self._ask(task, messages)
                return outcome
            except UnjudgeableItem as exc:
                outcome.error = redact(str(exc))
                return outcome
            except TransientJudgeError as exc:
                if _gave_up(outcome, outcome.request_retries, self.spec.max_retries, "request failed", exc):
                    return outcome
                outcome.request_retries += 1
                self.sleep(backoff_delay(outcome.request_retries, self.spec.backoff_s, exc.retry_after, self._rng))
            except MalformedJudgment as exc:
                if _gave_up(outcome, outcome.malformed_retries, self.spec.parse_retries, "malformed judgment", exc):
                    return outcome
                outcome.malformed_retries += 1
                messages = list(task.messages) + repair_turns(exc.reply, str(exc), task.kind)

    def run(self, tasks: Sequence[JudgeTask], on_done: Callable[[int], None] | None = None) -> list[JudgeOutcome]:
        """Judge every task; return outcomes in the input order.

        Raises:
            JudgeError: the judge cannot work at all (bad key, unknown model).
        """
        outcomes: list[JudgeOutcome | None] = [None] * len(tasks)
        pending: list[int] = []
        for index, task in enumerate(tasks):
            stored = self.cache.get(self.key(task)) if self.cache is not None else None
            if not isinstance(stored, Judgment if task.kind == "pointwise" else PairwiseJudgment):
                pending.append(index)
                continue
            outcomes[index] = JudgeOutcome(judgment=stored, cached=True)
            if on_done is not None:
                on_done(1)

        def finish(index: int, outcome: JudgeOutcome) -> None:
            outcomes[index] = outcome
            if outcome.judgment is not None and self.cache is not None:
                self.cache.put(self.key(tasks[index]), outcome.judgment)
            if on_done is not None:
                on_done(1)

        workers = min(max(1, self.client.concurrency), max(1, len(pending)))
        if workers == 1:
            for index in pending:
                finish(index, self.attempt(tasks[index]))
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
                futures: dict[Future[JudgeOutcome], int] = {pool.submit(self.attempt, tasks[i]): i for i in pending}
                remaining = set(futures)
                while remaining:
                    done, remaining = wait(remaining, return_when=FIRST_EXCEPTION)
                    for future in done:
                        if future.exception() is not None:
                            for other in remaining:
                                other.cancel()
                            raise future.exception()  # type: ignore[misc]
                        finish(futures[future], future.result())
        return [o if o is not None else JudgeOutcome(error="not judged") for o in outcomes]


# How far a judge agrees with people: the numbers that make a judge worth trusting.

@dataclass(frozen=True)
class LabelledExample:
    """One human-labelled judgment.

    Attributes:
        id: the example's id (default its line number).
        item: the item's fields.
        prediction: the output that was judged.
        reference: the reference answer.
        scores: criterion -> human score 1..5.
        line: the line it came from.
    """

    id: str
    item: dict[str, Any]
    prediction: str
    reference: str
    scores: dict[str, int]
    line: int


def load_labels(path: Path, rubric: Rubric) -> list[LabelledExample]:
    """Read a labels file and check it against the rubric.

    Raises:
        DataError: missing file, bad JSON, or a line without every criterion scored 1..5;
            the message names the file and line.
    """
    refuse_non_regular_file(path, "labels file")
    if not path.is_file():
        raise DataError(f"{path}: labels file not found; check the path")
    examples: list[LabelledExample] = []
    for number, row in json_objects(path, "fix the line"):
        where = f"{path}:{number}"
        if not isinstance(row.get("item"), dict) or "prediction" not in row:
            raise DataError(f"{where}: each line needs 'item' (an object), 'prediction' and 'scores'")
        scores = row.get("scores")
        if not isinstance(scores, dict):
            raise DataError(f"{where}: 'scores' must map each criterion to a score 1..5")
        for name in rubric.criterion_names:
            value = scores.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value not in SCALE:
                raise DataError(f"{where}: scores.{name} must be an integer 1..5, got {value!r}")
        examples.append(LabelledExample(
            id=str(row.get("id", number)), item=row["item"], prediction=str(row["prediction"]),
            reference=str(row.get("reference", "")), scores={n: int(scores[n]) for n in rubric.criterion_names},
            line=number,
        ))
    if not examples:
        raise DataError(f"{path}: no labelled examples; add JSONL lines (see docs/judges.md)")
    return examples


def to_level(score: float) -> int:
    """Round a (possibly weighted) score to the nearest level 1..5, halves up."""
    return int(min(SCALE[-1], max(SCALE[0], math.floor(score + 0.5))))


def weighted_kappa(human: Sequence[int], judge: Sequence[int], weights: str = "quadratic") -> float | None:
    """Cohen's kappa with linear or quadratic disagreement weights over the levels 1..5.

    Returns:
        Kappa, or None when it is undefined (both raters used one and the same level).
    """
    k = len(SCALE)
    observed = np.zeros((k, k))
    for h, j in zip(human, judge, strict=True):
        observed[SCALE.index(h), SCALE.index(j)] += 1
    n = observed.sum()
    if n == 0:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    weight = distance**2 if weights == "quadratic" else distance
    denominator = float((weight * expected).sum())
    if denominator == 0:
        return None
    return 1.0 - float((weight * observed).sum()) / denominator


def spearman(human: Sequence[float], judge: Sequence[float]) -> float | None:
    """Spearman's rho, or None when undefined (fewer than 2 items, or a constant rater)."""
    if len(human) < 2 or len(set(human)) < 2 or len(set(judge)) < 2:
        return None
    from scipy.stats import spearmanr

    value = float(spearmanr(human, judge).statistic)
    return None if math.isnan(value) else value


def agreement(
    human: Sequence[int], judge: Sequence[float], repeats: Sequence[Sequence[float]] = ()
) -> CriterionAgreement:
    """Compute every agreement statistic for one criterion.

    Args:
        human: human scores.
        judge: the judge's scores on the same examples (weighted means allowed).
        repeats: per example, the scores of every time it was judged (for self-consistency).
    """
    levels = [to_level(s) for s in judge]
    n = len(human)
    spread = [statistics.pstdev(r) for r in repeats if len(r) > 1]
    return CriterionAgreement(
        n=n,
        kappa=weighted_kappa(human, levels),
        spearman=spearman([float(h) for h in human], list(judge)),
        exact=sum(h == j for h, j in zip(human, levels, strict=True)) / n if n else None,
        within_one=sum(abs(h - j) <= 1 for h, j in zip(human, levels, strict=True)) / n if n else None,
        self_consistency=sum(spread) / len(spread) if spread else None,
    )


def is_calibrated(kappas: dict[str, float], criteria: Sequence[str], min_kappa: float | None) -> bool:
    """True when every criterion has a kappa of at least ``min_kappa`` (always, when none is required)."""
    if min_kappa is None:
        return True
    return bool(criteria) and all(name in kappas and kappas[name] >= min_kappa for name in criteria)


@dataclass(frozen=True)
class CalibrationResult:
    """A judge's agreement with a labels file, per criterion.

    Attributes:
        criteria: criterion -> agreement statistics.
        n: labelled examples.
        errors: examples the judge failed to judge (left out of the statistics).
        error_examples: a few of the judge errors' messages.
    """

    criteria: dict[str, CriterionAgreement]
    n: int
    errors: int
    error_examples: list[str]

    def kappas(self) -> dict[str, float]:
        """Return criterion -> kappa for the criteria where kappa is defined."""
        return {name: a.kappa for name, a in self.criteria.items() if a.kappa is not None}


def calibrate(examples: Sequence[LabelledExample], runner: JudgeRunner, repeats: int = 1,
              on_done: Callable[[int], None] | None = None) -> CalibrationResult:
    """Judge every labelled example (``repeats`` times) and compare with the human scores.

    Args:
        examples: the labelled examples.
        runner: the judge, with its retries and cache.
        repeats: how often each example is judged; above 1 measures self-consistency.
        on_done: progress callback, called per judgment.

    Raises:
        JudgeError: the judge cannot work at all.
    """
    from evalkit.judges.rubric import pointwise_messages

    rubric = runner.rubric
    tasks = []
    for example in examples:
        messages = pointwise_messages(rubric, example.item, example.prediction, example.reference,
                                      f"labels line {example.line}")
        for repeat in range(max(1, repeats)):
            key = (example.item, example.reference, example.prediction, repeat)
            tasks.append(JudgeTask("pointwise", messages, key))
    outcomes = runner.run(tasks, on_done)
    per_example = [outcomes[i * max(1, repeats) : (i + 1) * max(1, repeats)] for i in range(len(examples))]
    tally = JudgeTally()
    for outcome in outcomes:
        count_outcome(tally, outcome)
    criteria: dict[str, CriterionAgreement] = {}
    judged = [(ex, [o.judgment for o in outs if isinstance(o.judgment, Judgment)])
              for ex, outs in zip(examples, per_example, strict=True)]
    judged = [(ex, js) for ex, js in judged if js]
    for name in rubric.criterion_names:
        human = [ex.scores[name] for ex, _ in judged]
        first = [js[0].scores[name] for _, js in judged]
        repeated = [[j.scores[name] for j in js] for _, js in judged] if repeats > 1 else []
        criteria[name] = agreement(human, first, repeated)
    failed = len(examples) - len(judged)
    return CalibrationResult(criteria=criteria, n=len(examples), errors=failed, error_examples=tally.error_examples)


# How far a judge agrees with itself: position consistency and self-consistency.
#
# Two audits, one shape of result, one gate:
#
# * **position consistency** (pairwise): every pair is judged in both orders
#   (below); the rate is the share of pairs whose two verdicts
#   agree. A judge that always prefers position A scores 0, a fair one 1.
# * **self-consistency** (pointwise, ``repeats: k``): each output is judged k times, the
#   order of the criteria in the prompt rotated on every repeat (and, for a judge
#   sampling at a temperature above 0, its sampling varies too); the item's score per
#   criterion is the median of the k, and the agreement is the share of items whose k
#   scores round to the same integer.
#
# The run's ``judges.<key>.consistency`` entry holds, per criterion (``preference`` for
# pairwise), the rate, the suite's ``min_consistency`` and the items that disagreed. A
# judge below ``min_consistency`` on a criterion does not gate on it, as an uncalibrated
# judge does not (:func:`evalkit.judges.section.consistency_not_counted`, read by the bars). Every repeat is
# its own cached judgment: the repeat number is part of the judgment's cache key.
#
# Also in this module:
#
# * Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden.

if TYPE_CHECKING:
    # Types only: the bars read this module's gate, and must not import the judge clients.
    from evalkit.judges.providers import Judgment
    from evalkit.judges.rubric import Rubric

ConsistencyKind = Literal["position", "self"]
PREFERENCE = "preference"
MAX_LISTED_ITEMS = 50


def rotated_rubric(rubric: Rubric, repeat: int) -> Rubric:
    """Return the rubric with its criteria rotated by ``repeat`` places (repeat 0: itself).

    The prompt lists criteria and the answer's JSON fields in this order, so each repeat
    asks the same question in a different order; scores are read by criterion name.
    """
    shift = repeat % len(rubric.criteria)
    if shift == 0:
        return rubric
    rotated = rubric.model_copy(update={"criteria": rubric.criteria[shift:] + rubric.criteria[:shift]})
    rotated._source = rubric._source
    return rotated


@dataclass
class RepeatedJudgment:
    """One output's k judgments, and their median.

    Attributes:
        judgment: the per-criterion median of the successful repeats (None when all failed).
        repeats: each successful repeat's scores, in repeat order.
        failed: how many repeats failed.
    """

    judgment: Judgment | None
    repeats: list[dict[str, float]] = field(default_factory=list)
    failed: int = 0

    def agrees(self, criterion: str) -> bool | None:
        """Whether every repeat's score on ``criterion`` rounds to one integer (None: fewer than two)."""
        values = [r[criterion] for r in self.repeats if criterion in r]
        if len(values) < 2:
            return None
        return len({round(v) for v in values}) == 1


def median_of(judgments: Sequence[Judgment], criteria: Sequence[str]) -> Judgment | None:
    """Return a judgment whose score per criterion is the median over ``judgments``.

    The reasoning shows every repeat's score and keeps the first repeat's reasoning.
    """
    if not judgments:
        return None
    if len(judgments) == 1:
        return judgments[0]
    scores: dict[str, float] = {}
    shown: list[str] = []
    for criterion in criteria:
        values = [j.scores[criterion] for j in judgments if criterion in j.scores]
        if values:
            scores[criterion] = float(statistics.median(values))
            shown.append(f"{criterion} " + ", ".join(f"{v:g}" for v in values))
    reasoning = f"median of {len(judgments)} judgments ({'; '.join(shown)}); first: {judgments[0].reasoning}"
    return dataclasses.replace(judgments[0], scores=scores, reasoning=reasoning, distributions={})


def combine_repeats(judgments: Sequence[Judgment | None], repeats: int, criteria: Sequence[str]
                    ) -> list[RepeatedJudgment]:
    """Group a flat list (item-major, ``repeats`` per item) into one median per item."""
    grouped = []
    for start in range(0, len(judgments), repeats):
        chunk = judgments[start : start + repeats]
        ok = [j for j in chunk if j is not None]
        grouped.append(RepeatedJudgment(judgment=median_of(ok, criteria), repeats=[dict(j.scores) for j in ok],
                                        failed=len(chunk) - len(ok)))
    return grouped


def _entry(kind: ConsistencyKind, rates: Mapping[str, float | None], n: Mapping[str, int],
           disagreeing: Mapping[str, Sequence[str]], minimum: float | None, extra: Mapping[str, Any]
           ) -> dict[str, Any]:
    below = sorted(c for c, r in rates.items() if minimum is not None and r is not None and r < minimum)
    return {
        "kind": kind, "rate": dict(rates), "n": dict(n), "min_consistency": minimum,
        "consistent": None if minimum is None else not below, "below": below,
        "items": {c: list(ids)[:MAX_LISTED_ITEMS] for c, ids in disagreeing.items() if ids},
        "items_total": {c: len(ids) for c, ids in disagreeing.items() if ids}, **extra,
    }


def position_consistency(verdicts: Mapping[str, Sequence[tuple[str, PairedVerdict]]],
                         minimum: float | None) -> dict[str, Any]:
    """Return the section entry for pairwise position consistency over every candidate.

    Args:
        verdicts: candidate -> (item id, combined verdict) for each judged pair.
        minimum: the suite's ``min_consistency`` (None: report, do not gate).
    """
    pairs = [v for per in verdicts.values() for _, v in per]
    consistent = sum(not v.inconsistent for v in pairs)
    rate = consistent / len(pairs) if pairs else None
    inconsistent = [f"{candidate}:{item_id}" for candidate, per in verdicts.items()
                    for item_id, v in per if v.inconsistent]
    picks = [v.first_position_picks() for v in pairs]
    decided = sum(d for _, d in picks)
    first = sum(a for a, _ in picks) / decided if decided else None
    return _entry("position", {PREFERENCE: rate}, {PREFERENCE: len(pairs)}, {PREFERENCE: inconsistent}, minimum,
                  {"first_position_rate": first})


def self_consistency(repeated: Mapping[str, Sequence[tuple[str, RepeatedJudgment]]], criteria: Sequence[str],
                     repeats: int, minimum: float | None) -> dict[str, Any]:
    """Return the section entry for pointwise self-consistency over every candidate.

    Args:
        repeated: candidate -> (item id, its repeated judgment) for each judged item.
        criteria: the rubric's criteria.
        repeats: k, the judgments per output.
        minimum: the suite's ``min_consistency`` (None: report, do not gate).
    """
    rates: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    disagreeing: dict[str, list[str]] = {}
    spread: dict[str, float | None] = {}
    for criterion in criteria:
        verdicts = [(f"{c}:{item_id}", r.agrees(criterion), r) for c, per in repeated.items() for item_id, r in per]
        measured = [(ident, agrees) for ident, agrees, _ in verdicts if agrees is not None]
        counts[criterion] = len(measured)
        rates[criterion] = sum(a for _, a in measured) / len(measured) if measured else None
        disagreeing[criterion] = [ident for ident, agrees in measured if not agrees]
        stds = [statistics.pstdev([s[criterion] for s in r.repeats if criterion in s])
                for _, agrees, r in verdicts if agrees is not None]
        spread[criterion] = statistics.fmean(stds) if stds else None
    return _entry("self", rates, counts, disagreeing, minimum, {"repeats": repeats, "mean_std": spread})


# Pairwise verdicts in both orders, so a judge's position bias is measured, not hidden.
#
# For each item the judge sees (A = candidate, B = baseline) and then (A = baseline,
# B = candidate). Each verdict maps to the candidate's view: 1 for a candidate win,
# 0.5 for a tie, 0 for a baseline win. The item is *order-consistent* when the two
# mapped verdicts agree; its *preference* is then that value (1 win, 0.5 tie, 0 loss).
# An *order-inconsistent* item, whose verdict depended on where a response stood rather
# than what it said, counts as a tie (0.5) and is listed as such: a judge that always
# prefers position A therefore moves no win rate, and its consistency rate is 0.

_CANDIDATE_FIRST = {"A": 1.0, "B": 0.0, "tie": 0.5}
_BASELINE_FIRST = {"A": 0.0, "B": 1.0, "tie": 0.5}


@dataclass(frozen=True)
class PairedVerdict:
    """One item's two verdicts, seen from the candidate.

    Attributes:
        preference: 1 win, 0.5 tie (or order-inconsistent), 0 loss.
        inconsistent: the two orders disagree.
        candidate_first: the raw verdict (``A``/``B``/``tie``) with the candidate shown as A.
        baseline_first: the raw verdict with the baseline shown as A.
    """

    preference: float
    inconsistent: bool
    candidate_first: str = ""
    baseline_first: str = ""

    def first_position_picks(self) -> tuple[int, int]:
        """Return (verdicts naming A, verdicts naming A or B) over the two orders."""
        raw = (self.candidate_first, self.baseline_first)
        return sum(v == "A" for v in raw), sum(v in ("A", "B") for v in raw)


def combine_orders(candidate_first: str, baseline_first: str) -> PairedVerdict:
    """Combine the verdict with the candidate shown first and the one with it second.

    Args:
        candidate_first: ``A``/``B``/``tie`` when A was the candidate.
        baseline_first: ``A``/``B``/``tie`` when A was the baseline.
    """
    first = _CANDIDATE_FIRST[candidate_first]
    second = _BASELINE_FIRST[baseline_first]
    inconsistent = first != second
    return PairedVerdict(preference=0.5 if inconsistent else first, inconsistent=inconsistent,
                         candidate_first=candidate_first, baseline_first=baseline_first)


def summarise_pairwise(verdicts: Sequence[PairedVerdict]) -> dict[str, Any]:
    """Return a candidate's rates: win, tie, loss, inconsistency, consistency, first position.

    Keys: ``win_rate``, ``tie_rate``, ``loss_rate``, ``inconsistent_rate``, ``consistency``
    (1 - inconsistent_rate), ``first_position_rate`` and ``n``.
    ``tie_rate`` includes the inconsistent items (they count as ties);
    ``first_position_rate`` is the share of non-tie verdicts that named position A
    (0.5 for a judge without position preference), None when every verdict was a tie.
    """
    n = len(verdicts)
    if n == 0:
        return {"win_rate": None, "tie_rate": None, "loss_rate": None, "inconsistent_rate": None,
                "consistency": None, "first_position_rate": None, "n": 0}
    wins = sum(v.preference > 0.5 for v in verdicts)
    ties = sum(v.preference == 0.5 for v in verdicts)
    inconsistent = sum(v.inconsistent for v in verdicts)
    named_a = sum(v.first_position_picks()[0] for v in verdicts)
    decided = sum(v.first_position_picks()[1] for v in verdicts)
    return {
        "win_rate": wins / n,
        "tie_rate": ties / n,
        "loss_rate": (n - wins - ties) / n,
        "inconsistent_rate": inconsistent / n,
        "consistency": 1 - inconsistent / n,
        "first_position_rate": named_a / decided if decided else None,
        "n": n,
    }
