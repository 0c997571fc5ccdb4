"""Obtaining judgments robustly: bounded retries, backoff, a concurrency limit, the cache.

For each task (a rendered prompt):

* a cached judgment for the same judge, rubric, item and prediction is used as is;
* a transient failure (429, 5xx, timeout, unreadable body) is retried after a delay
  that doubles each time (with jitter, at least what ``Retry-After`` asked, capped at
  30 s), at most ``max_retries`` times;
* a malformed or off-scale judgment is asked again, with the judge shown its reply and
  told what was wrong, at most ``parse_retries`` times;
* an item the judge cannot take (its prompt too long) is an error at once;
* what still fails becomes a judge *error*: counted, its message kept, never a score.

At most ``concurrency`` requests are in flight (a thread pool of that size; a local
judge runs inline). A :class:`~evalkit.errors.JudgeError` (bad key, unknown model)
stops everything at once: every further request would fail the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

from evalkit.judges.cache import JudgmentCache, judgment_key
from evalkit.judges.clients import JudgeClient, Judgment, PairwiseJudgment, TransientJudgeError, UnjudgeableItem
from evalkit.judges.parsing import MalformedJudgment
from evalkit.judges.prompt import PROMPT_FORMAT
from evalkit.judges.rubric import Rubric
from evalkit.judges.section import JudgeTally as JudgeTally
from evalkit.judges.spec import JudgeClientSpec
from evalkit.models.api_keys import redact
from evalkit.prompting import Message

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


class JudgeRunner:
    """Runs tasks through a judge client with retries, the concurrency limit and the cache."""

    def __init__(
        self,
        client: JudgeClient,
        spec: JudgeClientSpec,
        rubric: Rubric,
        cache: JudgmentCache | None = None,
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
        return judgment_key(task.kind, self.client.identity, self._rubric_hash, PROMPT_FORMAT, *task.key_parts)

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
                outcome.request_retries += 1
                if outcome.request_retries > self.spec.max_retries:
                    outcome.request_retries -= 1
                    outcome.error = redact(f"request failed {outcome.request_retries + 1} times; last: {exc}")
                    return outcome
                self.sleep(backoff_delay(outcome.request_retries, self.spec.backoff_s, exc.retry_after, self._rng))
            except MalformedJudgment as exc:
                outcome.malformed_retries += 1
                if outcome.malformed_retries > self.spec.parse_retries:
                    outcome.malformed_retries -= 1
                    outcome.error = redact(f"malformed judgment {outcome.malformed_retries + 1} times; last: {exc}")
                    return outcome
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
            if stored is None:
                pending.append(index)
                continue
            judgment = Judgment.from_json(stored) if task.kind == "pointwise" else PairwiseJudgment.from_json(stored)
            outcomes[index] = JudgeOutcome(judgment=judgment, cached=True)
            if on_done is not None:
                on_done(1)

        def finish(index: int, outcome: JudgeOutcome) -> None:
            outcomes[index] = outcome
            if outcome.judgment is not None and self.cache is not None:
                self.cache.put(self.key(tasks[index]), outcome.judgment.to_json())
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
