"""Judges through the official anthropic and openai SDKs against a real vLLM server.

A session fixture starts vLLM's OpenAI- and Anthropic-compatible server on loopback
(evalkit.models.openai_server.serve_vllm) serving a tiny random Llama: it answers fast,
gives logprobs, and structured output (JSON schema) makes its judgments well formed.
A fault-injecting proxy (a real HTTP server on 127.0.0.1) stands in front of it and
answers 429, 500, garbage and too-slow responses on a fixed schedule.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.judges.providers import AnthropicJudge, OpenAIJudge
from evalkit.judges.rubric import load_rubric, pointwise_messages
from evalkit.judges.section import FAILED_REASON, JudgeClientSpec
from evalkit.models.openai_server import VLLMServer, serve_vllm
from evalkit.testing.tiny_model import build_tiny_llama

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

SERVED = "judge"
SECRET_OPENAI = "sk-test-SECRET-openai-0123456789abcdef"
SECRET_ANTHROPIC = "sk-ant-test-SECRET-anthropic-0123456789"


def _group_rss_bytes(leader: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != leader:  # process group id
                continue
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.fixture(scope="session")
def judge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    # vLLM's CPU attention needs head_dim >= 32: hidden 128 over 4 heads.
    model = build_tiny_llama(tmp_path_factory.mktemp("judge-model"), hidden=128)
    with serve_vllm(model, SERVED, kv_cache_gib=1, timeout_s=420,
                    extra_args=["--enforce-eager", "--max-model-len", "1024"]) as server:
        yield server


class FaultProxy:
    """Forwards to the server, but answers some requests with a fault, on a fixed cycle."""

    def __init__(self, upstream: str, schedule: list[str], slow_s: float = 3.0, api_key: str = "") -> None:
        self.upstream = upstream
        self.api_key = api_key  # the server's own key (evalkit starts it with one)
        self.cycle = itertools.cycle(schedule)
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self.log: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    fault = next(proxy.cycle)
                    proxy.log.append(fault)
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    proxy.answer(self, fault, body)
                except OSError:
                    pass  # the client gave up on a slow answer (broken pipe, reset, timeout)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, fault: str, body: bytes) -> None:
        if fault in ("429", "500"):
            payload = b'{"error": {"message": "injected", "type": "fault"}}'
            handler.send_response(int(fault))
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if fault == "garbage":
            payload = b"<html>\x00\xffnot json at all"
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if fault == "slow":
            time.sleep(self.slow_s)
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("host", "content-length", "authorization", "x-api-key")}
        headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.upstream + handler.path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = response.read()
            status = response.status
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_factory(judge_server: VLLMServer) -> Iterator[Any]:
    proxies: list[FaultProxy] = []

    def make(schedule: list[str], slow_s: float = 1.0) -> FaultProxy:
        proxy = FaultProxy(f"http://127.0.0.1:{judge_server.port}", schedule, slow_s, judge_server.api_key)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# The tiny model's context is 1024 tokens of a small vocabulary: a short rubric fits it.
SHORT_RUBRIC = """\
name: short
criteria:
  - name: format
    description: Is it JSON?
    levels: {1: not JSON, 2: barely, 3: partly, 4: mostly, 5: exactly}
  - name: accuracy
    description: Are the labels right?
    levels: {1: none right, 2: few, 3: half, 4: most, 5: all}
template: |
  Input: {{ item.input }}
  Actual: {{ prediction }}
  {{ output_format }}
"""


@pytest.fixture(scope="session")
def short_rubric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rubric") / "short.yaml"
    path.write_text(SHORT_RUBRIC)
    return path


def _messages(path: Path) -> tuple[Any, list[dict[str, str]]]:
    rubric = load_rubric(path)
    return rubric, pointwise_messages(rubric, {"input": "Can you update my billing address?"},
                                      '{"severity": "low"}', "")


def test_server_memory_is_modest(judge_server: VLLMServer) -> None:
    rss = _group_rss_bytes(judge_server.process.pid)
    assert 0 < rss < 6 * 2**30, f"vLLM server group uses {rss / 2**30:.1f} GiB"


def test_openai_sdk_judge_weights_scores_by_logprobs(proxy_factory: Any, short_rubric: Path) -> None:
    rubric, messages = _messages(short_rubric)
    proxy = proxy_factory(["ok"])  # no faults: it adds the server's key
    judge = OpenAIJudge(JudgeClientSpec(provider="openai", model=SERVED, base_url=proxy.url + "/v1",
                                        max_tokens=96))
    try:
        judgment = judge.pointwise(messages, rubric)
    finally:
        judge.close()
    assert set(judgment.scores) == {"format", "accuracy"}
    assert all(1.0 <= s <= 5.0 for s in judgment.scores.values())
    # vLLM's own count of what it billed, read from the response's usage.
    assert judge.usage.requests == 1 and judge.usage.prompt_tokens > 0 and 0 < judge.usage.completion_tokens <= 96
    assert judgment.distributions, "the server gave logprobs; scores should be weighted by them"
    for name, distribution in judgment.distributions.items():
        assert sum(distribution.values()) == pytest.approx(1.0)
        assert judgment.scores[name] == pytest.approx(sum(s * p for s, p in distribution.items()))


def test_anthropic_sdk_judge_reads_structured_judgment(proxy_factory: Any, short_rubric: Path) -> None:
    rubric, messages = _messages(short_rubric)
    # vLLM checks a Bearer token; the Anthropic SDK sends x-api-key: the proxy adds the server's key.
    root = proxy_factory(["ok"]).url
    judge = AnthropicJudge(JudgeClientSpec(provider="anthropic", model=SERVED, base_url=root, max_tokens=96))
    try:
        judgment = judge.pointwise(messages, rubric)
    finally:
        judge.close()
    assert set(judgment.scores) == {"format", "accuracy"}
    assert all(s in {1.0, 2.0, 3.0, 4.0, 5.0} for s in judgment.scores.values())
    assert judge.usage.requests == 1 and judge.usage.prompt_tokens > 0 and 0 < judge.usage.completion_tokens <= 96


def _judge_entry(rubric: Path, provider: str, url: str, name: str, **settings: Any) -> dict[str, Any]:
    return {"rubric": str(rubric), "name": name,
            "judge": {"provider": provider, "model": SERVED, "base_url": url, "max_tokens": 96, "timeout_s": 30,
                      "backoff_s": 0.01, "concurrency": 3, **settings}}


def test_suite_run_through_faults_completes_with_bounded_retries_and_no_key_leak(
        make_suite, tiny_model_dir: Path, proxy_factory: Any, isolated_home: Path, short_rubric: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_OPENAI)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_ANTHROPIC)
    schedule = ["ok", "429", "ok", "500", "garbage", "ok", "slow"]
    openai_proxy = proxy_factory(schedule)
    anthropic_proxy = proxy_factory(schedule)
    suite = make_suite(
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "other", "model": str(tiny_model_dir), "prompt": {"system": "Be brief."}}],
        judges=[_judge_entry(short_rubric, "openai", openai_proxy.url + "/v1", "cq_openai", max_retries=8),
                _judge_entry(short_rubric, "anthropic", anthropic_proxy.url, "cq_anthropic", max_retries=8)],
    )
    run = run_suite(suite, write=True)
    for key, proxy in (("cq_openai", openai_proxy), ("cq_anthropic", anthropic_proxy)):
        section = run.sections["judges"][key]
        tally = section["tally"]
        assert tally["tasks"] == 6
        faults = [f for f in proxy.log if f not in ("ok", "slow")]
        assert faults, "the proxy injected faults"
        # Every request is accounted for: one per task plus one per counted retry; no hidden SDK retries.
        assert len(proxy.log) == tally["tasks"] + tally["request_retries"] + tally["malformed_retries"]
        assert tally["request_retries"] >= len(faults)
        assert tally["request_retries"] <= tally["tasks"] * 8
        assert proxy.max_in_flight <= 3
        judged = [i.scores[f"judge.{key}.format"] for c in run.candidates for i in c.items]
        scored = sum(not s.reason.startswith(FAILED_REASON) for s in judged)
        assert len(judged) == 6 and scored + tally["errors"] == 6  # failures are scored as failures
        assert sum(section["errors"].values()) == tally["errors"]
        for candidate in run.candidates:
            for item in candidate.items:
                if f"judge.{key}.format" in item.scores:
                    assert 1.0 <= item.scores[f"judge.{key}.format"].value <= 5.0

    assert run.run_dir is not None
    texts = [p.read_bytes() for p in run.run_dir.rglob("*") if p.is_file()]
    texts += [p.read_bytes() for p in isolated_home.rglob("*") if p.is_file()]
    for secret in (SECRET_OPENAI, SECRET_ANTHROPIC):
        assert not any(secret.encode() in blob for blob in texts), "an API key reached a written file"
    cache = isolated_home / "judgments.sqlite"
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT value FROM judgments").fetchall()
    assert rows and not any(SECRET_OPENAI in r[0] or SECRET_ANTHROPIC in r[0] for r in rows)
    assert os.environ["OPENAI_API_KEY"] == SECRET_OPENAI


def test_exhausted_retries_are_counted_errors_never_scores(
        make_suite, tiny_model_dir: Path, proxy_factory: Any, short_rubric: Path) -> None:  # type: ignore[no-untyped-def]
    # The third answer comes after the client's timeout: a timeout, not retried either.
    proxy = proxy_factory(["ok", "500", "slow"], slow_s=8.0)
    suite = make_suite(judges=[_judge_entry(short_rubric, "openai", proxy.url + "/v1", "cq_strict", max_retries=0,
                                            parse_retries=0, concurrency=1, timeout_s=5)])
    run = run_suite(suite, write=False)
    section = run.sections["judges"]["cq_strict"]
    assert proxy.log == ["ok", "500", "slow"]  # three items, no retries at all
    assert section["tally"]["errors"] == 2 and section["errors"]["base"] == 2
    items = run.candidate("base").items
    reasons = [i.scores["judge.cq_strict.format"].reason for i in items]
    assert [r.startswith(FAILED_REASON) for r in reasons] == [False, True, True]
    assert [i.scores["judge.cq_strict.format"].value for i in items][1:] == [1.0, 1.0]
    assert any("2 of 3 judgments failed" in w for w in run.warnings)
    assert any("Timeout" in e for e in section["tally"]["error_examples"])
    assert json.dumps(section)  # JSON-ready
