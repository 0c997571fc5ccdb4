"""The ``openai_server`` backend: models behind any OpenAI-compatible chat endpoint.

A candidate's ``options`` say where its model is::

    candidates:
      - name: lora
        model: smollm2-135m-instruct
        adapter: ../adapters/lora
        backend: openai_server
        options:
          base_url: http://127.0.0.1:8000/v1   # a vLLM server, a fleet's balancer, a hosted API
          model: lora                          # the API model name (default: the candidate's)
          api_key_env: OPENAI_API_KEY          # env var holding the key (none needed locally)
          concurrency: 8                       # requests in flight at once
          timeout_s: 120                       # per request; max_retries: 3 retries with backoff

A ``model:`` that is not on this machine (``model: gpt-4o-mini`` behind a hosted API,
or a model only the server has) is a *hosted* model: it is known by its endpoint and
name (:func:`evalkit.models.sources.hosted_model`), it needs no local files, and the
stages that need weights (benchmarks, parity) skip it with a note.

With ``serve: true`` instead of ``base_url``, evalkit starts a local vLLM server for
the candidate's base model (:func:`evalkit.models.vllm_server.serve_vllm`), loads each
adapter candidate into it as its own model name, and stops it when the backend is
closed (at the end of the run, on Ctrl-C and on errors). Candidates on one base share
one server; a later adapter of a higher rank than the server allows restarts it.

Requests use the official ``openai`` SDK, greedy at temperature 0, in parallel threads;
completions come back in input order.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.config import GenerationConfig
from evalkit.errors import ConfigError, ModelError
from evalkit.models.backend import Message, ModelVariant, ProgressCallback, register_backend
from evalkit.models.hf import load_tokenizer, render_chat
from evalkit.models.vllm_server import VLLMServer, serve_vllm

BASE_SERVED_NAME = "base"
KNOWN_OPTIONS = {"base_url", "model", "api_key_env", "concurrency", "serve", "timeout_s", "start_timeout_s",
                 "max_lora_rank", "max_retries"}


@dataclass
class LocalServer:
    """A vLLM server this backend started, and the adapters loaded into it."""

    model_dir: Path
    max_lora_rank: int
    server: VLLMServer
    stack: contextlib.ExitStack
    adapters: dict[str, Path] = field(default_factory=dict)


class OpenAIServerBackend:
    """Generates through OpenAI-compatible endpoints; see the module docstring for options."""

    def __init__(self) -> None:
        """Create a backend; clients and local servers are made on first use."""
        self._clients: dict[tuple[str, str], Any] = {}
        self._servers: dict[Path, LocalServer] = {}

    def endpoint(self, variant: ModelVariant) -> tuple[Any, str]:
        """Return the (openai client, API model name) that serve ``variant``.

        Raises:
            ConfigError: the options are incomplete or unknown.
            ModelError: a local server did not start or refused the adapter.
        """
        options = dict(variant.options)
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            raise ConfigError(
                f"backend openai_server: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
            )
        if options.get("serve"):
            base_url, model = self._serve(variant, options)
            api_key = "EMPTY"
        else:
            base_url = str(options.get("base_url") or "")
            if not base_url:
                raise ConfigError(
                    "backend openai_server: set options.base_url (e.g. http://127.0.0.1:8000/v1) "
                    "or options.serve: true to start a local vLLM server"
                )
            model = str(options.get("model") or variant.adapter_name or variant.model.source)
            key_env = str(options.get("api_key_env", "OPENAI_API_KEY"))
            # A local server needs no key; the SDK insists on a non-empty one.
            api_key = os.environ.get(key_env) or "EMPTY"
        client_key = (str(base_url), api_key)
        if client_key not in self._clients:
            from openai import OpenAI

            self._clients[client_key] = OpenAI(base_url=str(base_url), api_key=api_key,
                                               timeout=float(options.get("timeout_s", 120)),
                                               max_retries=int(options.get("max_retries", 3)))
        return self._clients[client_key], model

    def _serve(self, variant: ModelVariant, options: dict[str, Any]) -> tuple[str, str]:
        from evalkit.models.vllm import adapter_rank, engine_lora_rank

        rank = adapter_rank(variant.adapter) if variant.adapter is not None else 0
        local = self._servers.get(variant.model.path)
        if local is not None and rank > local.max_lora_rank:
            adapters = dict(local.adapters)
            self._stop(variant.model.path)
            local = None
        else:
            adapters = {}
        if local is None:
            needed = engine_lora_rank([rank, int(options.get("max_lora_rank", 16)),
                                       *(adapter_rank(p) for p in adapters.values())])
            stack = contextlib.ExitStack()
            server = stack.enter_context(serve_vllm(
                variant.model.path, BASE_SERVED_NAME, adapters, max_lora_rank=needed,
                dtype=variant.dtype if variant.dtype != "auto" else "auto",
                timeout_s=float(options.get("start_timeout_s", 300)),
            ))
            local = LocalServer(variant.model.path, needed, server, stack, dict(adapters))
            self._servers[variant.model.path] = local
        if variant.adapter is None:
            return local.server.base_url, BASE_SERVED_NAME
        name = variant.adapter_name or variant.adapter.name
        if local.adapters.get(name) != variant.adapter:
            if name in local.adapters:
                raise ModelError(f"two adapters share the name '{name}'; give candidates unique names")
            local.server.load_adapter(name, variant.adapter)
            local.adapters[name] = variant.adapter
        return local.server.base_url, name

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the prompt as the server's chat template renders it, when the model is local.

        A hosted model's template is not known here; its messages are returned as JSON.
        """
        if variant.model.hosted:
            return json.dumps(conversation, ensure_ascii=False)
        try:
            return render_chat(load_tokenizer(variant.model.path), conversation)
        except (OSError, ValueError):
            return json.dumps(conversation, ensure_ascii=False)

    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
    ) -> list[str]:
        """Generate one completion per conversation with parallel chat-completion requests."""
        client, model = self.endpoint(variant)
        concurrency = int(dict(variant.options).get("concurrency", 8))

        def complete(conversation: list[Message]) -> str:
            from openai import OpenAIError

            try:
                response = client.chat.completions.create(
                    model=model, messages=conversation, temperature=settings.temperature,
                    max_tokens=settings.max_new_tokens, seed=0,
                )
            except OpenAIError as exc:
                raise ModelError(f"endpoint {client.base_url} model '{model}' failed: {exc}") from None
            if on_progress is not None:
                on_progress(1)
            return (response.choices[0].message.content or "").strip()

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(complete, conversations))

    def _stop(self, model_dir: Path) -> None:
        local = self._servers.pop(model_dir, None)
        if local is not None:
            local.stack.close()

    def close(self) -> None:
        """Stop every server this backend started and drop its clients."""
        for model_dir in list(self._servers):
            self._stop(model_dir)
        for client in self._clients.values():
            client.close()
        self._clients.clear()


@register_backend("openai_server")
def _create_openai_server_backend() -> OpenAIServerBackend:
    return OpenAIServerBackend()
