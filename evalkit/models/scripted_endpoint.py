"""A scripted OpenAI-compatible chat endpoint on loopback, for fleet tests and benchmarks.

It is a real HTTP server (``http.server`` in a thread) that answers ``GET /v1/models``
and ``POST /v1/chat/completions`` the way vLLM does, so the ``openai`` SDK and the
fleet code run unchanged against it. Its answers are scripted, not generated: the
completion of a conversation is a hash of its messages and of the endpoint's
``root`` (the weights it claims to serve), so two endpoints with one root answer
identically and a "stale" one (another root) answers differently. It can wait a fixed
``delay_s`` before each answer (an endpoint that is the bottleneck) and fail every
chat request after ``fail_after`` answers (a replica that dies mid-run)::

    with ScriptedEndpoint(model="tiny", delay_s=0.05) as endpoint:
        endpoint.base_url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


def scripted_completion(root: str, messages: Any, max_tokens: int) -> str:
    """Return the scripted answer of an endpoint serving ``root`` (``max_tokens`` words at most)."""
    digest = hashlib.sha256(json.dumps([root, messages], sort_keys=True).encode()).hexdigest()
    words = [digest[i : i + 4] for i in range(0, 48, 4)]
    return " ".join(words[: max(1, max_tokens)])


class _LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server that queues enough connections for a concurrent client."""

    daemon_threads = True
    request_queue_size = 128


class ScriptedEndpoint:
    """A loopback OpenAI-compatible endpoint with scripted answers; see the module docstring.

    Args:
        model: the model id it lists and accepts.
        root: what it reports as the model's ``root`` (default: ``/models/<model>``).
        delay_s: seconds to wait before each chat answer.
        fail_after: answer this many chat requests, then fail every later one with HTTP 500.

    :meth:`hold_after_next` makes answers wait for an event: a test passes another
    endpoint's ``first_failure`` so that the order of requests across endpoints is fixed,
    not left to how fast threads happen to run on a loaded machine.
    """

    def __init__(self, model: str = "tiny", root: str | None = None, *, delay_s: float = 0.0,
                 fail_after: int | None = None) -> None:
        """Prepare the endpoint; ``start`` (or ``with``) makes it listen."""
        self.model = model
        self.root = root or f"/models/{model}"
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.answered = 0
        self.failed = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.first_failure = threading.Event()
        """Set when this endpoint fails its first request."""
        self._hold: tuple[threading.Event, int] | None = None
        self._lock = threading.Lock()
        self._server = _LoopbackServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The API root, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ScriptedEndpoint:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedEndpoint:
        """Start serving for the ``with`` block."""
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        """Stop serving."""
        self.stop()

    def hold_after_next(self, event: threading.Event | None) -> None:
        """Answer the next request (a fleet's probe), then hold each later one until ``event`` is set.

        ``None`` lifts the hold.
        """
        self._hold = None if event is None else (event, self.answered + 1)

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Return (status, JSON body) for one chat-completion request."""
        if body.get("model") != self.model:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.", "code": 404}}
        if self._hold is not None and self.answered >= self._hold[1]:
            self._hold[0].wait(30.0)  # bounded: a test that never sets it still ends
        with self._lock:
            if self.fail_after is not None and self.answered >= self.fail_after:
                self.failed += 1
                self.first_failure.set()
                return 500, {"error": {"message": "scripted failure", "code": 500}}
            self.answered += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        time.sleep(self.delay_s)
        with self._lock:
            self.in_flight -= 1
        text = scripted_completion(self.root, body.get("messages"), int(body.get("max_tokens") or 16))
        return 200, {
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1},
        }

    def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0,
                                            "owned_by": "evalkit", "root": self.root, "parent": None,
                                            "max_model_len": 2048}]}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/v1/models"):
                    self._send(200, endpoint._models())
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/").endswith("/v1/chat/completions"):
                    self._send(*endpoint._chat(body))
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test and benchmark output quiet."""

        return Handler
