"""A judge API with 30% injected faults: bounded retries, every failure counted and shown, bars gated.

The judge is the real ``openai`` (or ``anthropic``) client, the official SDK, talking to
a scripted server on loopback (tests/scripted_server.py) that answers 30% of requests,
drawn with a fixed seed, with a fault: 429 with Retry-After, 500, a reply that is not
JSON, an out-of-range score, or a reply slower than the client's timeout.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Answer, ScriptedServer, chat_answer, messages_answer

from evalkit.api import run_suite
from evalkit.judges.section import FAILED_REASON, failures_exceeded
from evalkit.record.results import read_section
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS

FAULTS = ("429", "500", "malformed", "out_of_range", "slow")
ITEMS = [dict(row, input=f"{row['input']} (copy {n})") for n in range(8) for row in CLASSIFIER_ITEMS]
TIMEOUT_S = 0.6


class FaultyJudge:
    """Good judgments (format 4, style 3), except a seeded 30% of requests that get a fault."""

    def __init__(self, seed: int = 14, rate: float = 0.3, retry_after_s: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.retry_after_s = retry_after_s
        self.lock = threading.Lock()
        self.log: list[tuple[float, str]] = []

    def __call__(self, kind: str, body: dict[str, Any]) -> Answer:
        with self.lock:
            fault = self.rng.choice(FAULTS) if self.rng.random() < self.rate else "ok"
            self.log.append((time.monotonic(), fault))
        wrap = chat_answer if kind == "chat" else messages_answer
        model = str(body.get("model", ""))
        if fault == "429":
            return Answer(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                          headers={"Retry-After": str(self.retry_after_s)})
        if fault == "500":
            return Answer(500, {"error": {"message": "injected", "type": "server"}})
        if fault == "malformed":
            return Answer(body=wrap("I think it is fine, maybe a 4 {format: four", model))
        scores = {"format": 9 if fault == "out_of_range" else 4, "style": 3}
        answer = Answer(body=wrap(json.dumps({**scores, "reasoning": "scripted"}), model))
        if fault == "slow":
            answer.delay_s = TIMEOUT_S * 3
        return answer


def suite_with_judge(make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any], url: str,
                     provider: str = "openai", bar: str = "judge.q.format >= 1.0",
                     **judge: Any) -> Path:
    rubric = write_rubric(good_rubric)
    settings = {"provider": provider, "model": "judge", "base_url": url, "timeout_s": TIMEOUT_S,
                "backoff_s": 0.01, "concurrency": 1, "structured_output": False, "logprobs": False,
                "max_retries": judge.pop("max_retries", 0), "parse_retries": judge.pop("parse_retries", 0)}
    return make_suite(ITEMS, generation={"max_new_tokens": 4, "batch_size": 8},
                      judges=[{"rubric": str(rubric), "name": "q", "judge": settings, **judge}],
                      bars=[{"base": bar}])


def judged_values(run: Any, metric: str) -> list[tuple[float, str]]:
    return [(i.scores[metric].value, i.scores[metric].reason) for c in run.candidates for i in c.items]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_faults_without_retries_are_counted_scored_as_failures_and_fail_the_bar(
        provider: str, make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    faulty = FaultyJudge()
    with ScriptedServer({"judge": {}}, reply=faulty) as server:
        url = server.url + "/v1" if provider == "openai" else server.url
        started = time.monotonic()
        run = run_suite(suite_with_judge(make_suite, write_rubric, good_rubric, url, provider), write=True)
        elapsed = time.monotonic() - started
    section = run.sections["judges"]["q"]
    faults = [f for _, f in faulty.log if f != "ok"]
    # No retries: one request per item, and every fault is one failed judgment.
    assert len(faulty.log) == len(ITEMS) == section["tally"]["tasks"]
    assert 0.2 * len(ITEMS) <= len(faults) <= 0.45 * len(ITEMS)
    assert section["tally"]["errors"] == len(faults) == section["failures"]["base"]["n_failed"]
    assert section["per_candidate"]["base"]["format"]["n_failed"] == len(faults)
    assert section["per_candidate"]["base"]["format"]["n"] == len(ITEMS)  # none dropped
    values = judged_values(run, "judge.q.format")
    failed = [v for v, reason in values if reason.startswith(FAILED_REASON)]
    assert len(failed) == len(faults) and set(failed) == {1.0}  # the criterion's minimum
    assert {v for v, reason in values if not reason.startswith(FAILED_REASON)} == {4.0}
    # The bar's value (>= 1.0) is met, but failures exceed max_failures (5%): it fails, saying why.
    [bar] = run.sections["bars"]
    assert bar["status"] == "failed" and "max_failures" in bar["message"]
    assert any("scored as failures" in w and "bars on this judge fail" in w for w in run.warnings)
    assert run.run_dir is not None
    report = (run.run_dir / "report.html").read_text()
    assert "failed" in report and str(len(faults)) in report
    # Bounded time: slow replies time out once each, nothing retried.
    assert elapsed < 60


def test_bounded_retries_recover_most_faults_and_honour_retry_after(
        make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    faulty = FaultyJudge(seed=7)
    with ScriptedServer({"judge": {}}, reply=faulty) as server:
        started = time.monotonic()
        run = run_suite(suite_with_judge(make_suite, write_rubric, good_rubric, server.url + "/v1",
                                         max_retries=4, parse_retries=2, max_failures="10%"), write=False)
        elapsed = time.monotonic() - started
    tally = run.sections["judges"]["q"]["tally"]
    # Every request is accounted for: one per task plus one per counted retry.
    assert len(faulty.log) == tally["tasks"] + tally["request_retries"] + tally["malformed_retries"]
    assert tally["request_retries"] <= 4 * tally["tasks"] and tally["malformed_retries"] <= 2 * tally["tasks"]
    assert tally["request_retries"] + tally["malformed_retries"] >= sum(f != "ok" for _, f in faulty.log) - 1
    # After a 429 the retry waited at least what Retry-After asked (a task whose retries ran
    # out moves on to the next task at once: at most one such gap per failed judgment).
    gaps = [later - at for (at, fault), (later, _) in zip(faulty.log, faulty.log[1:], strict=False) if fault == "429"]
    assert gaps and sum(g >= faulty.retry_after_s * 0.95 for g in gaps) >= len(gaps) - tally["errors"]
    failures = run.sections["judges"]["q"]["failures"]["base"]
    assert failures["n_failed"] == tally["errors"] <= 0.1 * len(ITEMS)
    assert run.sections["bars"][0]["status"] == "passed"
    # Bounded: worst case per task is (1 + 4 retries) timeouts plus capped waits.
    assert elapsed < 120


def test_a_tolerance_above_the_failure_rate_lets_the_bar_pass(
        make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    with ScriptedServer({"judge": {}}, reply=FaultyJudge()) as server:
        run = run_suite(suite_with_judge(make_suite, write_rubric, good_rubric, server.url + "/v1",
                                         max_failures="60%"), write=False)
    assert run.sections["judges"]["q"]["failures"]["base"]["exceeded"] is False
    assert run.sections["bars"][0]["status"] == "passed"


def test_a_comparing_bar_fails_when_the_baseline_side_exceeds_the_tolerance() -> None:
    sections = {"judges": {"q": {"failures": {
        "base": {"n": 10, "n_failed": 4, "rate": 0.4, "max_failures": 0.05, "exceeded": True},
        "lora": {"n": 10, "n_failed": 0, "rate": 0.0, "max_failures": 0.05, "exceeded": False}}}}}
    judges = read_section(sections, "judges")
    assert failures_exceeded(judges, "judge.q.format", ["lora"]) is None
    why = failures_exceeded(judges, "judge.q.format", ["lora", "base"])
    assert why is not None and "4 of 10 judgments of 'base' failed" in why
    assert failures_exceeded(judges, "exact_match", ["base"]) is None
