"""The openai_server backend's usage: the server's own token counts, per-request wall time, none when absent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scripted_server import Answer, ScriptedServer, chat_answer

from evalkit.api import run_suite
from evalkit.models.backend import ModelVariant
from evalkit.models.openai_server import OpenAIServerBackend
from evalkit.models.sources import hosted_model
from evalkit.suite.config import GenerationConfig
from tests.conftest import SuiteWriter

SETTINGS = GenerationConfig(max_new_tokens=8)


def _counting_reply(kind: str, body: dict[str, Any]) -> Answer:
    """Report usage from the conversation (prompt = characters, completion = 7), none for 'quiet' ones."""
    text = body["messages"][-1]["content"]
    payload = chat_answer(f"echo {text}", str(body.get("model")))
    if "quiet" in text:
        del payload["usage"]  # a server that sends no usage (some proxies, old servers)
    else:
        payload["usage"] = {"prompt_tokens": len(text), "completion_tokens": 7, "total_tokens": len(text) + 7}
    return Answer(body=payload, delay_s=0.05)


def test_usage_is_the_servers_count_and_none_without_it() -> None:
    conversations = [[{"role": "user", "content": text}] for text in ("hello", "quiet please", "where is it")]
    with ScriptedServer(reply=_counting_reply) as server:
        base_url = server.url + "/v1"
        variant = ModelVariant(hosted_model("served", base_url), options={"base_url": base_url, "model": "served"})
        backend = OpenAIServerBackend()
        try:
            texts = backend.generate(variant, conversations, SETTINGS)
        finally:
            backend.close()
    assert texts == ["echo hello", "echo quiet please", "echo where is it"]
    usage = backend.last_usage
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [(5, 7), (None, None), (11, 7)]
    # Each request's own wall time: at least the server's scripted delay, and no time to first token.
    assert all(0.05 <= u.seconds < 5 and u.first_token_seconds is None for u in usage)


def test_a_run_prices_the_servers_tokens(make_suite: SuiteWriter) -> None:
    with ScriptedServer(reply=_counting_reply) as server:
        base_url = server.url + "/v1"
        suite = make_suite(
            candidates=[{"name": "hosted", "model": "served", "backend": "openai_server",
                         "options": {"base_url": base_url}}],
            prices={"hosted": {"input_per_million": 1000.0, "output_per_million": 2000.0}},
            bars=[], checks=["exact_match"],
        )
        run = run_suite(suite, write=False, cache=False)
        sent = [json.loads(r.body)["messages"][-1]["content"] for r in server.requests
                if r.path.endswith("/chat/completions")]
    assert run.candidate("hosted").status == "ok", run.candidate("hosted").message
    entry = run.sections["usage"]["hosted"]
    assert entry["measured_items"] == len(sent) == len(run.candidate("hosted").items)
    # What the server reported, summed: its counts, not the local tokenizer's.
    assert entry["prompt_tokens"] == sum(len(text) for text in sent)
    assert entry["completion_tokens"] == 7 * len(sent)
    assert entry["cost"] == pytest.approx((entry["prompt_tokens"] * 1000.0 + entry["completion_tokens"] * 2000.0) / 1e6)
    assert entry["price"] == "hosted" and entry["latency_p50"] >= 0.05
