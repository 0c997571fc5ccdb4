"""Retry bookkeeping of JudgeRunner with a scripted in-process client.

A stand-in client is used here (not a server) so that every path of the retry loop is
hit deterministically and fast; the same loop runs against a real vLLM server behind
a fault-injecting proxy in test_api_judges.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from evalkit.errors import JudgeError
from evalkit.judges.calibration import JudgeRunner, JudgeTask, backoff_delay, judgment_cache
from evalkit.judges.providers import Judgment, PairwiseJudgment, TransientJudgeError
from evalkit.judges.rubric import MalformedJudgment, load_rubric
from evalkit.judges.section import JudgeClientSpec
from evalkit.store.cache import JsonCache

REPO = Path(__file__).resolve().parents[2]


class ScriptedClient:
    identity = "scripted"

    def __init__(self, script: list[str], concurrency: int = 1) -> None:
        self.script = list(script)
        self.concurrency = concurrency
        self.calls: list[list[dict[str, str]]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def pointwise(self, messages, rubric):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls.append(messages)
            step = self.script.pop(0) if self.script else "ok"
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(0.01)
        with self.lock:
            self.in_flight -= 1
        if step == "429":
            raise TransientJudgeError("HTTP 429", retry_after=0.0)
        if step == "bad":
            raise MalformedJudgment("'format' is 9, outside the scale 1..5", reply='{"format": 9}')
        if step == "fatal":
            raise JudgeError("bad key")
        return Judgment(scores={c: 4.0 for c in rubric.criterion_names}, reasoning="fine")

    def pairwise(self, messages):  # type: ignore[no-untyped-def]
        return PairwiseJudgment("A")

    def close(self) -> None:
        pass


def runner(client: ScriptedClient, cache: JsonCache[Judgment | PairwiseJudgment] | None = None, **spec: object) -> tuple[JudgeRunner, list[float]]:
    sleeps: list[float] = []
    settings = JudgeClientSpec(provider="openai", model="m", max_retries=2, parse_retries=1, backoff_s=1.0, **spec)  # type: ignore[arg-type]
    rubric = load_rubric(REPO / "rubrics/classifier_quality.yaml")
    return JudgeRunner(client, settings, rubric, cache, sleep=sleeps.append), sleeps


def task(n: int = 0) -> JudgeTask:
    return JudgeTask("pointwise", [{"role": "user", "content": f"item {n}"}], ({"n": n}, "ref", "pred", 0))


def test_transient_errors_are_retried_with_growing_backoff() -> None:
    client = ScriptedClient(["429", "429", "ok"])
    judge, sleeps = runner(client)
    (outcome,) = judge.run([task()])
    assert outcome.judgment is not None and outcome.request_retries == 2 and len(client.calls) == 3
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_retries_are_bounded_then_an_error_not_a_score() -> None:
    client = ScriptedClient(["429"] * 10)
    judge, _ = runner(client)
    (outcome,) = judge.run([task()])
    assert outcome.judgment is None and "failed 3 times" in outcome.error and len(client.calls) == 3


def test_malformed_judgments_are_asked_again_with_the_problem_shown() -> None:
    client = ScriptedClient(["bad", "ok"])
    judge, _ = runner(client)
    (outcome,) = judge.run([task()])
    assert outcome.judgment is not None and outcome.malformed_retries == 1
    retry = client.calls[1]
    assert retry[-2] == {"role": "assistant", "content": '{"format": 9}'} and "outside the scale" in retry[-1]["content"]


def test_persistently_malformed_is_an_error() -> None:
    client = ScriptedClient(["bad"] * 5)
    judge, _ = runner(client)
    (outcome,) = judge.run([task()])
    assert outcome.judgment is None and "malformed judgment 2 times" in outcome.error and len(client.calls) == 2


def test_fatal_errors_stop_the_run() -> None:
    judge, _ = runner(ScriptedClient(["ok", "fatal"], concurrency=2))
    with pytest.raises(JudgeError):
        judge.run([task(n) for n in range(6)])


def test_concurrency_limit_and_order() -> None:
    client = ScriptedClient([], concurrency=3)
    judge, _ = runner(client)
    outcomes = judge.run([task(n) for n in range(12)])
    assert len(outcomes) == 12 and all(o.judgment is not None for o in outcomes)
    assert 1 < client.max_in_flight <= 3


def test_cache_answers_repeated_questions(tmp_path: Path) -> None:
    with judgment_cache(tmp_path / "c.sqlite") as cache:
        client = ScriptedClient([])
        judge, _ = runner(client, cache)
        judge.run([task(1), task(2)])
        again = judge.run([task(1), task(2), task(3)])
    assert [o.cached for o in again] == [True, True, False] and len(client.calls) == 3


def test_backoff_honours_retry_after_and_caps() -> None:
    import random

    rng = random.Random(0)
    assert backoff_delay(1, 0.1, 5.0, rng) == 5.0
    assert backoff_delay(20, 1.0, None, rng) <= 30.0
