"""The openai_server backend against a real local vLLM server on loopback, and its error paths."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from vllm_fixtures import shared_vllm_backend, tiny_vllm_models

from evalkit.api import run_suite
from evalkit.errors import ConfigError, ModelError
from evalkit.models.backend import ModelVariant
from evalkit.models.openai_server import OpenAIServerBackend, serve_vllm
from evalkit.models.sources import hosted_model, resolve_model
from evalkit.suite.config import GenerationConfig

CONVERSATIONS = [[{"role": "user", "content": f"Classify this customer message: order {n} is late"}]
                 for n in range(4)]
SETTINGS = GenerationConfig(max_new_tokens=10)
# Server vs offline engine: a few tokens, so that one float32 near-tie on the random model
# (the server's engine runs with other thread counts) cannot cascade through a long output.
SHORT = GenerationConfig(max_new_tokens=4)


def _variant(tiny_model_dir: Path, **options: object) -> ModelVariant:
    return ModelVariant(resolve_model(str(tiny_model_dir)), options=options)


def test_options_need_a_base_url_or_serve(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"set options.base_url .* or options.serve: true"):
        OpenAIServerBackend().endpoint(_variant(tiny_model_dir))


def test_unknown_options_are_named(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option.*baseurl"):
        OpenAIServerBackend().endpoint(_variant(tiny_model_dir, baseurl="http://x"))


def test_an_unreachable_endpoint_names_it(tiny_model_dir: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAIServerBackend()
    variant = _variant(tiny_model_dir, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2,
                       max_retries=0)
    with pytest.raises(ModelError, match=rf"endpoint http://127.0.0.1:{port}/v1/ model '.*' failed"):
        backend.generate(variant, CONVERSATIONS[:1], SETTINGS)
    backend.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_a_server_that_does_not_answer_in_time_quotes_its_log(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"did not answer within 1 s; last log lines") as error:
        with serve_vllm(tiny_model_dir, "tiny", timeout_s=1):
            pass
    log_path = Path(str(error.value).split("(")[-1].split(")")[0])
    assert log_path.name == "server.log"


def same_start(served: str, offline: str) -> bool:
    """True when one text starts the other, ignoring undecodable bytes.

    The random model writes byte soup; the server's streaming detokenizer holds back or
    drops partial UTF-8 characters that evalkit's offline decoding shows as U+FFFD, and
    it may stop on a different byte boundary. The generated text itself must agree.
    """
    a, b = served.replace("\ufffd", ""), offline.replace("\ufffd", "")
    return bool(a) and bool(b) and (a.startswith(b) or b.startswith(a))


@pytest.mark.slow
@pytest.mark.vllm
def test_served_base_and_runtime_loaded_adapter_match_the_offline_engine() -> None:
    models = tiny_vllm_models()
    base = ModelVariant(resolve_model(str(models.base)), options={"serve": True, "start_timeout_s": 240})
    lora = ModelVariant(base.model, models.lora, "lora", options={"serve": True})
    backend = OpenAIServerBackend()
    try:
        served_base = backend.generate(base, CONVERSATIONS, SHORT)
        served_usage = list(backend.last_usage)
        served_lora = backend.generate(lora, CONVERSATIONS, SHORT)
        server = backend._servers[models.base].server
        assert len(backend._servers) == 1, "base and adapter share one server"
    finally:
        backend.close()
    assert server.process.poll() is not None, "the server stopped with the backend"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", server.port)) != 0, "nothing listens on its port any more"
    offline = shared_vllm_backend()
    # The server renders the same chat template but runs its engine in a worker with other
    # thread counts; on a random model a float32 near-tie may flip a token, rarely.
    for served, variant in ((served_base, models.variant()), (served_lora, models.variant("lora"))):
        expected = offline.generate(variant, CONVERSATIONS, SHORT)
        assert sum(same_start(a, b) for a, b in zip(served, expected, strict=True)) >= len(CONVERSATIONS) - 1
        if served is served_base:
            # The server's own usage: the same prompt token count as evalkit's tokenization; its
            # completion count includes a final end token, which the offline count leaves out.
            for used, local in zip(served_usage, offline.last_usage, strict=True):
                assert used.prompt_tokens == local.prompt_tokens
                assert used.completion_tokens in (local.completion_tokens, local.completion_tokens + 1)
    assert sum(a != b for a, b in zip(served_lora, served_base, strict=True)) >= len(CONVERSATIONS) - 1


@pytest.mark.slow
@pytest.mark.vllm
def test_a_hosted_model_name_is_evaluated_without_local_files(make_suite: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The server stands in for a hosted API: the suite names a model that exists only
    # behind the endpoint, so nothing may be resolved, downloaded or converted locally.
    hosted_name = "acme/support-classifier-v2"
    models = tiny_vllm_models()
    with serve_vllm(models.base, hosted_name, timeout_s=420,
                    extra_args=["--enforce-eager", "--max-model-len", "1024"]) as server:
        monkeypatch.setenv("HOSTED_API_KEY", server.api_key)  # the server requires its key, as a hosted API
        candidate = {"name": "hosted", "model": hosted_name, "backend": "openai_server",
                     "options": {"base_url": server.base_url, "api_key_env": "HOSTED_API_KEY"}}
        suite = make_suite(candidates=[candidate], generation={"max_new_tokens": 6, "batch_size": 2})
        run = run_suite(suite, store=tmp_path / "runs.db")
        again = run_suite(suite, store=tmp_path / "runs.db")
    result = run.candidate("hosted")
    assert result.status == "ok", result.message
    assert result.identity is not None
    assert result.identity.model_fingerprint == hosted_model(hosted_name, server.base_url).fingerprint
    assert all(item.prediction for item in result.items), "the endpoint answered every item"
    # The prompt shown in the report is the messages sent (the server's template is unknown here).
    assert '"role": "system"' in result.items[0].prompt
    assert [i.prediction for i in again.candidate("hosted").items] == [i.prediction for i in result.items]
