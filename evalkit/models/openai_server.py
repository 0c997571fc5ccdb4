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
completions come back in input order. ``last_usage`` holds one
:class:`~evalkit.usage.stage.GenerationUsage` per conversation of the last call: the tokens the
server reported in the response's ``usage`` (None for both when it sent none) and the
request's own wall time; no time to first token (requests are not streamed). Through a
fleet (several ``base_url``) it is empty, and the run meters the chunk's time alone.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, ModelError
from evalkit.models.backend import Message, ModelVariant, ProgressCallback, device_kind, register_backend, resolve_dtype
from evalkit.models.fleet import EndpointFleet, fleet_urls
from evalkit.models.options import (
    ENGINE_OPTIONS,
    PLACEHOLDER_KEY,
    check_base_url,
    check_key_env_name,
    read_api_key,
    redact,
    server_args,
)
from evalkit.models.sources import adapter_rank, engine_lora_rank
from evalkit.models.vllm_server import VLLMServer, serve_vllm
from evalkit.suite.config import GenerationConfig
from evalkit.usage.stage import GenerationUsage, reported_tokens

BASE_SERVED_NAME = "base"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
KNOWN_OPTIONS = {"base_url", "model", "api_key_env", "concurrency", "serve", "timeout_s", "start_timeout_s",
                 "max_lora_rank", "max_retries", "fleet_check", *ENGINE_OPTIONS}


@dataclass
class LocalServer:
    """A vLLM server this backend started, and the adapters loaded into it."""

    model_dir: Path
    max_lora_rank: int
    server: VLLMServer
    stack: contextlib.ExitStack
    adapters: dict[str, Path] = field(default_factory=dict)


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the candidate's options once they are known, safe and complete.

    Raises:
        ConfigError: an unknown option, a key variable that is not ``*_API_KEY``, a
            ``base_url`` that is no http(s) URL, or neither ``base_url`` nor ``serve``.
    """
    options = dict(options)
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise ConfigError(
            f"backend openai_server: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    try:
        check_key_env_name(str(options.get("api_key_env", DEFAULT_KEY_ENV)))
        if options.get("base_url"):
            for url in fleet_urls(options["base_url"]):
                check_base_url(url)
    except ValueError as exc:
        field = "api_key_env" if "API key" in str(exc) else "base_url"
        raise ConfigError(f"backend openai_server: options.{field}: {exc}") from None
    if not options.get("serve") and not options.get("base_url"):
        raise ConfigError(
            "backend openai_server: set options.base_url (e.g. http://127.0.0.1:8000/v1) "
            "or options.serve: true to start a local vLLM server"
        )
    return options


def external_endpoint(variant: ModelVariant) -> tuple[str, str]:
    """Return the (base_url, API model name) of a candidate on an external endpoint."""
    options = dict(variant.options)
    model = str(options.get("model") or variant.adapter_name or variant.model.source)
    # A fleet's endpoints are checked to serve one model (evalkit.models.fleet): the first stands for all.
    return fleet_urls(options["base_url"])[0], model


def endpoint_key(options: Mapping[str, Any], base_url: str) -> str:
    """Return the key for an external endpoint: the named variable's value, or a placeholder.

    Raises:
        ConfigError: the key would go over plain http to another host.
    """
    key_env = str(options.get("api_key_env", DEFAULT_KEY_ENV))
    # A local server needs no key; the SDK insists on a non-empty one.
    return read_api_key(key_env, base_url, "backend openai_server: options.base_url") or PLACEHOLDER_KEY


# Fields of a /v1/models entry that say what is served; ``created`` is the time of the answer.
_IDENTITY_FIELDS = ("id", "root", "parent", "owned_by", "max_model_len")
_IDENTITY_MARKERS = ("fingerprint", "revision", "version", "digest", "sha", "hash")


def served_identity(variant: ModelVariant) -> dict[str, Any]:
    """Return what decides this candidate's completions, for the generation cache key.

    With ``serve: true`` evalkit starts the server from local files: the local model
    and adapter hashes (already in the key) plus the resolved dtype and device. For an
    external endpoint, what the server says it serves: its ``/models`` entry for the
    model (``id``, ``root``, ``parent`` and any fingerprint, revision or version
    field), so a server restarted on other weights under the same name is a new key.

    Raises:
        ConfigError: the options are invalid (see :func:`check_options`).
        ModelError: the endpoint does not answer, or does not list the model.
    """
    options = check_options(variant.options)
    if options.get("serve"):
        device = device_kind()
        return {"device": device, "dtype": resolve_dtype(variant.dtype, device), "served_by": "evalkit"}
    base_url, model = external_endpoint(variant)
    return {"served": _listed_model(base_url, model, endpoint_key(options, base_url),
                                    float(options.get("timeout_s", 120)))}


def _listed_model(base_url: str, model: str, api_key: str, timeout_s: float) -> dict[str, Any]:
    # Asked once per candidate and run: a server restarted on other weights is seen at once.
    from openai import NotFoundError, OpenAI, OpenAIError

    client = OpenAI(base_url=base_url, api_key=api_key, timeout=min(timeout_s, 30.0), max_retries=2)
    try:
        listed = [entry.model_dump() for entry in client.models.list()]
    except NotFoundError:
        # A server without a model list: its endpoint and the name are all that is known.
        return {"endpoint": base_url.rstrip("/"), "id": model, "listed": False}
    except OpenAIError as exc:
        raise ModelError(redact(f"endpoint {base_url} did not list its models ({type(exc).__name__}: {exc}); "
                                "is the server running and the base_url right?")) from None
    finally:
        client.close()
    for entry in listed:
        if entry.get("id") == model:
            identity = {k: entry[k] for k in _IDENTITY_FIELDS if entry.get(k) is not None}
            identity.update({k: v for k, v in entry.items()
                             if any(m in k.lower() for m in _IDENTITY_MARKERS) and v is not None})
            return {"endpoint": base_url.rstrip("/"), **identity}
    served = ", ".join(sorted(str(e.get("id")) for e in listed)[:20]) or "none"
    raise ModelError(f"endpoint {base_url} does not serve model '{model}' (it serves: {served}); "
                     "set the candidate's options.model to one of them")


@register_backend("openai_server", identity=served_identity)
class OpenAIServerBackend:
    """Generates through OpenAI-compatible endpoints; see the module docstring for options."""

    def __init__(self) -> None:
        """Create a backend; clients and local servers are made on first use."""
        self._clients: dict[tuple[str, str], Any] = {}
        self._servers: dict[Path, LocalServer] = {}
        self._fleets: dict[tuple[tuple[str, ...], str, tuple[str, ...]], EndpointFleet] = {}
        self.last_usage: list[GenerationUsage] = []  # see the module docstring

    def endpoint(self, variant: ModelVariant) -> tuple[Any, str]:
        """Return the (openai client, API model name) that serve ``variant``.

        Raises:
            ConfigError: the options are incomplete or unknown.
            ModelError: a local server did not start or refused the adapter.
        """
        options = check_options(variant.options)
        if options.get("serve"):
            base_url, model = self._serve(variant, options)
            api_key = self._servers[variant.model.path].server.api_key
        else:
            base_url, model = external_endpoint(variant)
            api_key = endpoint_key(options, base_url)
        client_key = (str(base_url), api_key)
        if client_key not in self._clients:
            from openai import OpenAI

            self._clients[client_key] = OpenAI(base_url=str(base_url), api_key=api_key,
                                               timeout=float(options.get("timeout_s", 120)),
                                               max_retries=int(options.get("max_retries", 3)))
        return self._clients[client_key], model

    def _serve(self, variant: ModelVariant, options: dict[str, Any]) -> tuple[str, str]:
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
                # Resolved here as in the cache key (served_identity), not left to vLLM.
                dtype=resolve_dtype(variant.dtype, device_kind()),
                timeout_s=float(options.get("start_timeout_s", 300)),
                extra_args=server_args(options),
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
        from evalkit.models.hf import load_tokenizer, render_chat  # torch and transformers: only here

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
        fleet = self.fleet(variant)
        self.last_usage = []
        if fleet is not None:
            return fleet.complete_all(conversations, temperature=settings.temperature,
                                      max_tokens=settings.max_new_tokens, on_progress=on_progress)
        client, model = self.endpoint(variant)
        concurrency = int(dict(variant.options).get("concurrency", 8))

        def complete(conversation: list[Message]) -> tuple[str, GenerationUsage]:
            from openai import OpenAIError

            started = time.perf_counter()
            try:
                response = client.chat.completions.create(
                    model=model, messages=conversation, temperature=settings.temperature,
                    max_tokens=settings.max_new_tokens, seed=0,
                )
            except OpenAIError as exc:
                raise ModelError(redact(f"endpoint {client.base_url} model '{model}' failed: {exc}")) from None
            seconds = time.perf_counter() - started
            prompt_tokens, completion_tokens = reported_tokens(getattr(response, "usage", None)) or (None, None)
            if on_progress is not None:
                on_progress(1)
            return (response.choices[0].message.content or "").strip(), \
                GenerationUsage(prompt_tokens, completion_tokens, seconds, latency_source="per_request")

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            answered = list(pool.map(complete, conversations))
        self.last_usage = [usage for _, usage in answered]
        return [text for text, _ in answered]

    def fleet(self, variant: ModelVariant) -> EndpointFleet | None:
        """Return the fleet serving ``variant`` when ``base_url`` lists several endpoints, else None."""
        options = check_options(variant.options)
        if options.get("serve") or len(fleet_urls(options["base_url"])) < 2:
            return None
        urls = fleet_urls(options["base_url"])
        _, model = external_endpoint(variant)
        keys = [endpoint_key(options, url) for url in urls]
        fleet_key = (tuple(urls), model, tuple(keys))
        if fleet_key not in self._fleets:
            self._fleets[fleet_key] = EndpointFleet(
                urls, model, keys, concurrency=int(options.get("concurrency", 8)),
                timeout_s=float(options.get("timeout_s", 120)), max_retries=int(options.get("max_retries", 1)),
                check=str(options.get("fleet_check", "probe")))
        return self._fleets[fleet_key]

    def fleet_reports(self) -> dict[str, list[dict[str, Any]]]:
        """Return, per fleet (by API model name), what each of its endpoints did in this run."""
        return {key[1]: fleet.report() for key, fleet in self._fleets.items()}

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
        for fleet in self._fleets.values():
            fleet.close()
        self._fleets.clear()
