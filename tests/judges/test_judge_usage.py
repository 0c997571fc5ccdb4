"""API judges' tokens and money: the official SDKs against a scripted server on loopback.

The server (tests/scripted_server.py) reports a usage that depends on the prompt, so the
expected totals are computed from what it received; prices come from evalkit's table or
the suite's ``prices:``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Answer, ScriptedServer, chat_answer, messages_answer

from evalkit.api import run_suite
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS
from evalkit.usage.stage import DEFAULT_PRICES

COMPLETION_TOKENS = 9


def _prompt_tokens(body: dict[str, Any]) -> int:
    """The scripted count of a request's prompt: its characters (system included)."""
    system = body.get("system") or ""
    return len(str(system)) + sum(len(m["content"]) for m in body["messages"])


class BillingJudge:
    """Good judgments; each reply's usage counts the prompt's characters, or is left out."""

    def __init__(self, send_usage: bool = True) -> None:
        self.send_usage = send_usage
        self.billed: list[int] = []

    def __call__(self, kind: str, body: dict[str, Any]) -> Answer:
        text = json.dumps({"format": 4, "style": 3, "reasoning": "scripted"})
        if kind == "chat":
            payload = chat_answer(text, str(body["model"]))
            payload["usage"] = {"prompt_tokens": _prompt_tokens(body), "completion_tokens": COMPLETION_TOKENS,
                                "total_tokens": 0}
        else:
            payload = messages_answer(text, str(body["model"]))
            payload["usage"] = {"input_tokens": _prompt_tokens(body), "output_tokens": COMPLETION_TOKENS}
        if not self.send_usage:
            del payload["usage"]
        self.billed.append(_prompt_tokens(body))
        return Answer(body=payload)


def _suite(make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any], url: str, provider: str,
           model: str, **suite: Any) -> Path:
    judge = {"provider": provider, "model": model, "base_url": url, "structured_output": False,
             "logprobs": False, "concurrency": 2}
    return make_suite(CLASSIFIER_ITEMS, generation={"max_new_tokens": 4, "batch_size": 8},
                      judges=[{"rubric": str(write_rubric(good_rubric)), "name": "q", "judge": judge}],
                      bars=[], **suite)


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4o-mini-2024-07-18"),
                                                 ("anthropic", "claude-sonnet-4-5")])
def test_judge_tokens_are_the_apis_and_priced_from_the_table(
        provider: str, model: str, make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    judge = BillingJudge()
    with ScriptedServer({model: {}}, reply=judge) as server:
        url = server.url + "/v1" if provider == "openai" else server.url
        run = run_suite(_suite(make_suite, write_rubric, good_rubric, url, provider, model), write=False)
    usage = run.sections["judges"]["q"]["usage"]
    assert usage["requests"] == len(judge.billed) == len(CLASSIFIER_ITEMS)
    assert usage["prompt_tokens"] == sum(judge.billed) and usage["completion_tokens"] == COMPLETION_TOKENS * len(
        judge.billed)
    key = "gpt-4o-mini*" if provider == "openai" else "claude-sonnet-4*"
    price = DEFAULT_PRICES[key]
    expected = (sum(judge.billed) * price.input_per_million
                + COMPLETION_TOKENS * len(judge.billed) * price.output_per_million) / 1e6
    assert usage["price"] == key and usage["currency"] == "USD"
    assert usage["cost"] == pytest.approx(expected)
    assert usage["cost_per_1k_requests"] == pytest.approx(expected / len(judge.billed) * 1000)
    assert usage["latency_p50"] > 0 and usage["seconds"] >= usage["latency_p95"]


def test_the_suite_prices_a_judge_by_name_and_cached_judgments_cost_nothing(
        make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    judge = BillingJudge()
    prices = {"judge:q": {"input_per_million": 100.0, "output_per_million": 1000.0, "currency": "EUR"}}
    with ScriptedServer({"gpt-4o": {}}, reply=judge) as server:
        suite = _suite(make_suite, write_rubric, good_rubric, server.url + "/v1", "openai", "gpt-4o", prices=prices)
        first = run_suite(suite, write=False)
        again = run_suite(suite, write=False)  # every judgment from the judgment cache
    usage = first.sections["judges"]["q"]["usage"]
    assert usage["price"] == "judge:q" and usage["currency"] == "EUR"
    assert usage["cost"] == pytest.approx((sum(judge.billed) * 100.0 + COMPLETION_TOKENS * len(judge.billed) * 1000.0)
                                          / 1e6)
    cached = again.sections["judges"]["q"]["usage"]
    assert cached["requests"] == 0 and cached["cost"] is None


def test_a_server_without_usage_gives_no_tokens_and_no_money(
        make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    with ScriptedServer({"gpt-4o": {}}, reply=BillingJudge(send_usage=False)) as server:
        run = run_suite(_suite(make_suite, write_rubric, good_rubric, server.url + "/v1", "openai", "gpt-4o"),
                        write=False)
    usage = run.sections["judges"]["q"]["usage"]
    assert usage["requests"] == usage["unreported"] == len(CLASSIFIER_ITEMS)
    assert usage["prompt_tokens"] is None and usage["cost"] is None  # never a made-up zero
    assert usage["price"] is None


def test_the_report_shows_the_judges_money(make_suite: Any, write_rubric: Any, good_rubric: dict[str, Any]) -> None:
    from evalkit.report.render import render_report

    judge = BillingJudge()
    with ScriptedServer({"gpt-4o": {}}, reply=judge) as server:
        run = run_suite(_suite(make_suite, write_rubric, good_rubric, server.url + "/v1", "openai", "gpt-4o"),
                        write=False)
    html = render_report(run)
    cost = run.sections["judges"]["q"]["usage"]["cost"]
    assert cost is not None and f"<td>{cost:.4g} USD</td>" in html
    assert f"<td>{sum(judge.billed)} / {COMPLETION_TOKENS * len(judge.billed)}</td>" in html
