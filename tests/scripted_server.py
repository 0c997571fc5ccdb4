"""A scripted OpenAI- and Anthropic-compatible HTTP server on loopback, for tests.

A real ``ThreadingHTTPServer`` speaking just enough of both APIs for evalkit's clients
(the official SDKs): ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST
/v1/messages``, ``POST /v1/load_lora_adapter``. What it answers is scripted by
``reply(kind, body) -> Answer``; every request is recorded (path, headers, body), so a
test can assert what was sent, and what was not (a key).

Run as a script it stands in for vLLM's server (see ``stand_in_vllm/``): it takes vLLM's
command line, requires ``VLLM_API_KEY`` when set, and starts a child process of its own,
as vLLM starts its engine core, so tests see a whole process group.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """One scripted answer: a status, a JSON (or raw) body, headers, a delay before it."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def echo_text(body: dict[str, Any]) -> str:
    """A deterministic completion: a digest of the conversation (the same prompt, the same text)."""
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
    return '{"label": "' + digest[:8] + '"}'


def chat_answer(text: str, model: str) -> dict[str, Any]:
    """An OpenAI chat completion carrying ``text``."""
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def messages_answer(text: str, model: str) -> dict[str, Any]:
    """An Anthropic Messages reply carrying ``text``."""
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def default_reply(kind: str, body: dict[str, Any]) -> Answer:
    """Echo a digest of the conversation, in the API the request used."""
    text = echo_text(body)
    model = str(body.get("model", ""))
    return Answer(body=chat_answer(text, model) if kind == "chat" else messages_answer(text, model))


@dataclass
class Request:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """The server; use as a context manager. ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, models: dict[str, dict[str, Any]] | None = None,
                 reply: Callable[[str, dict[str, Any]], Answer] = default_reply,
                 api_key: str | None = None, port: int = 0) -> None:
        self.models = models if models is not None else {"served": {"root": "/models/served"}}
        self.reply = reply
        self.api_key = api_key
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                scripted.handle(self, b"")

            def do_POST(self) -> None:
                scripted.handle(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _authorised(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.api_key is None:
            return True
        return (handler.headers.get("Authorization") == f"Bearer {self.api_key}"
                or handler.headers.get("x-api-key") == self.api_key)

    def handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        """Answer one request (see the module docstring)."""
        with self.lock:
            self.requests.append(Request(handler.command, handler.path, dict(handler.headers.items()), raw))
        path = handler.path.split("?")[0]
        if not self._authorised(handler):
            answer = Answer(401, {"error": {"message": "Unauthorized", "type": "auth"}})
        elif handler.command == "GET" and path.endswith("/models"):
            data = [{"id": name, "object": "model", "created": int(time.time()), "owned_by": "scripted", **extra}
                    for name, extra in self.models.items()]
            answer = Answer(body={"object": "list", "data": data})
        elif path.endswith("/load_lora_adapter"):
            request = json.loads(raw or b"{}")
            self.models[request["lora_name"]] = {"root": request["lora_path"]}
            answer = Answer(raw=b"Success")
        elif path.endswith("/chat/completions") or path.endswith("/messages"):
            answer = self.reply("chat" if path.endswith("/chat/completions") else "messages", json.loads(raw))
        else:
            answer = Answer(404, {"error": {"message": f"no route {path}"}})
        if answer.delay_s:
            time.sleep(answer.delay_s)
        payload = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout): as a real server sees it


def stand_in_main(argv: list[str]) -> None:
    """Serve like ``python -m vllm.entrypoints.openai.api_server`` (the options evalkit passes)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--served-model-name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--lora-modules", nargs="*", default=[])
    args, _ = parser.parse_known_args(argv)
    # vLLM's engine core runs in a process of its own; so does this stand-in's.
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    models = {args.served_model_name: {"root": args.model}}
    for module in args.lora_modules:
        name, path = module.split("=", 1)
        models[name] = {"root": path, "parent": args.served_model_name}
    delay = float(os.environ.get("STAND_IN_DELAY_S", "0"))

    def reply(kind: str, body: dict[str, Any]) -> Answer:
        answer = default_reply(kind, body)
        answer.delay_s = delay
        return answer

    pid_file = os.environ.get("STAND_IN_PID_FILE")
    if pid_file:
        with open(pid_file, "a") as handle:
            handle.write(f"{os.getpid()} {engine.pid}\n")
    server = ScriptedServer(models, reply, os.environ.get("VLLM_API_KEY"), args.port)
    try:
        server.server.serve_forever()
    finally:
        engine.kill()


if __name__ == "__main__":
    stand_in_main(sys.argv[1:])
