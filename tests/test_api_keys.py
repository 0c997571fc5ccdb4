"""API keys: only *_API_KEY variables, never over plain http off this machine, never written anywhere.

The canary test runs a whole suite (an ``openai_server`` candidate and an ``openai``
judge, both on a scripted loopback server) with a unique key in the environment and
greps every file evalkit wrote, and everything it printed, for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripted_server import Answer, ScriptedServer, chat_answer

from evalkit.errors import ConfigError
from evalkit.judges.section import JudgeClientSpec
from evalkit.models.openai_server import check_options, endpoint_key
from evalkit.models.options import check_key_env_name, is_loopback_host, redact, sends_in_clear

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("name, allowed", [
    ("OPENAI_API_KEY", True), ("ANTHROPIC_API_KEY", True), ("MY_GATEWAY_API_KEY", True),
    ("AWS_SECRET_ACCESS_KEY", False), ("HOME", False), ("GITHUB_TOKEN", False), ("openai_api_key", False),
    ("_API_KEY", False), ("X_API_KEY_2", False),
])
def test_only_api_key_variables_may_be_named(name: str, allowed: bool) -> None:
    if allowed:
        assert check_key_env_name(name) == name
    else:
        with pytest.raises(ValueError, match="_API_KEY"):
            check_key_env_name(name)


@pytest.mark.parametrize("url, clear", [
    ("http://127.0.0.1:8000/v1", False), ("http://localhost:1/v1", False), ("http://[::1]:80/v1", False),
    ("http://127.8.9.1/v1", False), ("https://api.example.com/v1", False),
    ("http://api.example.com/v1", True), ("http://10.0.0.5:8000/v1", True), ("http://localhost.evil.com/v1", True),
])
def test_plain_http_is_refused_only_off_this_machine(url: str, clear: bool) -> None:
    assert sends_in_clear(url) is clear


def test_loopback_names() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("LOCALHOST")
    assert not is_loopback_host("example.com") and not is_loopback_host("192.168.1.1")


def test_a_judge_naming_another_variable_fails_at_load() -> None:
    with pytest.raises(ValueError, match="not an API key variable"):
        JudgeClientSpec(provider="openai", model="m", api_key_env="AWS_SECRET_ACCESS_KEY")


def test_a_judge_key_bound_for_plain_http_elsewhere_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-xyz-0123456789")
    with pytest.raises(ValueError, match="plain http") as error:
        JudgeClientSpec(provider="openai", model="m", base_url="http://judge.example.com/v1")
    assert "sk-canary" not in str(error.value)
    JudgeClientSpec(provider="openai", model="m", base_url="https://judge.example.com/v1")
    JudgeClientSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY")
    JudgeClientSpec(provider="openai", model="m", base_url="http://judge.example.com/v1")  # no key, nothing sent


def test_backend_options_follow_the_same_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="options.api_key_env"):
        check_options({"base_url": "https://x.example.com/v1", "api_key_env": "HOME"})
    with pytest.raises(ConfigError, match="options.base_url"):
        check_options({"base_url": "ftp://x.example.com/"})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-xyz-0123456789")
    with pytest.raises(ConfigError, match="refusing to send the key in OPENAI_API_KEY over plain http"):
        endpoint_key({}, "http://x.example.com/v1")
    assert endpoint_key({}, "http://127.0.0.1:1/v1") == "sk-canary-xyz-0123456789"


def test_redact_scrubs_every_api_key_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_API_KEY", "sk-secret-value-123")
    assert redact("server said: bad key sk-secret-value-123") == "server said: bad key [redacted]"


def test_the_cli_exits_2_naming_the_field(make_suite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rubric = TESTS / "judges" / "conftest.py"  # never read: the suite fails before
    suite = make_suite(judges=[{"rubric": str(rubric), "judge": {"provider": "openai", "model": "m",
                                                                  "base_url": "http://judge.example.com/v1"}}])
    env = dict(os.environ, OPENAI_API_KEY="sk-canary-cli-0123456789")
    done = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "base_url" in done.stderr and "Traceback" not in done.stderr
    assert "sk-canary-cli" not in done.stderr + done.stdout


def judge_reply(kind: str, body: dict[str, Any]) -> Answer:
    """A judgment for judge requests, a classification for generation requests."""
    if body.get("model") == "judge":
        return Answer(body=chat_answer(json.dumps({"format": 4, "style": 3, "reasoning": "ok"}), "judge"))
    return Answer(body=chat_answer('{"severity": "low"}', str(body.get("model"))))


def test_a_canary_key_reaches_the_server_and_nothing_else(make_suite: Any, tmp_path: Path,
                                                          good_rubric_file: Path) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    with ScriptedServer({"judge": {}, "served-model": {"root": "/srv/m"}}, reply=judge_reply,
                        api_key=canary) as server:
        candidate = {"name": "endpoint", "model": "served-model", "backend": "openai_server",
                     "options": {"base_url": server.url + "/v1", "api_key_env": "CANARY_API_KEY"}}
        judge = {"provider": "openai", "model": "judge", "base_url": server.url + "/v1",
                 "api_key_env": "CANARY_API_KEY", "structured_output": False, "logprobs": False}
        suite = make_suite(candidates=[candidate], judges=[{"rubric": str(good_rubric_file), "name": "q",
                                                            "judge": judge}])
        home = tmp_path / "home"
        out = tmp_path / "out"
        env = dict(os.environ, CANARY_API_KEY=canary, EVALKIT_HOME=str(home))
        done = subprocess.run([sys.executable, "-m", "evalkit", "run", str(suite), "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        sent = [r for r in server.requests
                if {k.lower(): v for k, v in r.headers.items()}.get("authorization") == f"Bearer {canary}"]
    assert done.returncode in (0, 1), done.stderr[-3000:]
    assert sent, "the key was sent to the server it is for"
    assert any(r.path.endswith("/models") for r in sent) and any(r.path.endswith("/chat/completions") for r in sent)
    written = [p for root in (out, home, Path(os.environ["EVALKIT_STORE"]).parent, suite.parent.parent)
               for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in written) and any(p.suffix in (".db", ".sqlite") for p in written)
    leaked = [p for p in written if canary.encode() in p.read_bytes()]
    assert not leaked, f"the key reached {leaked}"
    assert canary not in done.stdout + done.stderr


@pytest.fixture
def good_rubric_file(tmp_path: Path) -> Path:
    from tests.judges.conftest import GOOD_RUBRIC

    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(GOOD_RUBRIC, sort_keys=False))
    return path
