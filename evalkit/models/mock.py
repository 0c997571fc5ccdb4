"""The ``mock`` backend: scripted or echoed outputs, no model, no torch.

A real backend like any other (registered as ``mock``), for fast tests and for a dry
run of a suite: every stage after generation (checks, comparison, bars, the store, the
report) runs on its outputs exactly as on a model's. A candidate's ``options`` say
what it answers::

    candidates:
      - name: base
        model: smollm2-135m-instruct
        backend: mock
        options: {echo: expected}          # the item's expected output: every check passes
      - name: lora
        model: smollm2-135m-instruct
        backend: mock
        options:
          outputs: {t1: '{"severity": "low"}', t2: "not json"}   # item id -> output
          # outputs: scripted.jsonl        # or a JSONL file of {"id": ..., "output": ...}
          default: ""                      # items the script leaves out (default: echo)

``echo`` is ``expected`` (the item's expected output) or ``prompt`` (the last user
message). An item that ``outputs`` does not name gets ``default`` when it is set, else
the ``echo`` answer (``expected`` when ``echo`` is not set). A relative ``outputs`` file
is read from the suite file's directory (``ModelVariant.base_dir``). The model is never loaded: ``model:`` only
names the candidate's identity. The generation cache key holds a digest of the script
(:func:`script_identity`), so editing the script regenerates.

Also in this module:

* A scripted OpenAI-compatible chat endpoint on loopback, for fleet tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from evalkit.errors import ConfigError
from evalkit.files.home import json_digest
from evalkit.files.yaml_source import json_objects, refuse_non_regular_file
from evalkit.models.backend import GenerationItem, Message, ModelVariant, ProgressCallback, register_backend
from evalkit.suite.config import GenerationConfig

OPTIONS = ("outputs", "echo", "default")
ECHO_MODES = ("expected", "prompt")


@dataclass(frozen=True)
class Script:
    """A candidate's validated mock options."""

    outputs: Mapping[str, str]
    echo: str
    default: str | None

    def answer(self, item: GenerationItem, conversation: list[Message]) -> str:
        """Return the output for one item."""
        if item.item_id in self.outputs:
            return self.outputs[item.item_id]
        if self.default is not None:
            return self.default
        if self.echo == "prompt":
            users = [m["content"] for m in conversation if m.get("role") == "user"]
            return users[-1] if users else ""
        return item.reference


def load_script(options: Mapping[str, Any], base_dir: Path) -> Script:
    """Validate a mock candidate's options and read its outputs file, if any.

    Raises:
        ConfigError: an unknown option, a bad ``echo``, or an unreadable or malformed outputs file.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"backend mock: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(OPTIONS)}")
    echo = options.get("echo", "expected")
    if echo not in ECHO_MODES:
        raise ConfigError(f"backend mock: options.echo must be one of {', '.join(ECHO_MODES)}, not {echo!r}")
    default = options.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError("backend mock: options.default must be a string (the output of unscripted items)")
    raw = options.get("outputs", {})
    if isinstance(raw, str):
        outputs = _read_outputs_file(base_dir / raw if not Path(raw).is_absolute() else Path(raw))
    elif isinstance(raw, Mapping) and all(isinstance(v, str) for v in raw.values()):
        outputs = {str(k): v for k, v in raw.items()}
    else:
        raise ConfigError("backend mock: options.outputs must map item ids to output strings, "
                          "or name a JSONL file of {\"id\": ..., \"output\": ...}")
    return Script(outputs=outputs, echo=str(echo), default=default)


def _read_outputs_file(path: Path) -> dict[str, str]:
    # A FIFO here would block the run forever on open: refused before opening.
    refuse_non_regular_file(path, "backend mock: outputs file (options.outputs)", ConfigError)
    outputs: dict[str, str] = {}
    try:
        for number, record in json_objects(path, 'write one {"id", "output"} object per line', ConfigError):
            if not (isinstance(record.get("output"), str) and "id" in record):
                raise ConfigError(f"{path}:{number}: needs \"id\" and a string \"output\"")
            outputs[str(record["id"])] = record["output"]
    except FileNotFoundError:
        raise ConfigError(f"backend mock: outputs file {path} not found; check options.outputs") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"backend mock: outputs file {path} cannot be read as UTF-8 text: {exc}") from None
    return outputs


def script_identity(variant: ModelVariant) -> dict[str, Any]:
    """Return the runtime identity of a mock candidate for the cache key: a digest of its script."""
    script = load_script(variant.options, variant.base_dir or Path.cwd())
    return {"device": "none", "script": json_digest({"outputs": dict(script.outputs), "echo": script.echo,
                                                      "default": script.default})}


@register_backend("mock", identity=script_identity)
class MockBackend:
    """Answers every conversation from a candidate's script (see the module docstring).

    ``takes_items`` tells the runner to pass ``items`` (ids and expected outputs) to
    :meth:`generate`.
    """

    takes_items = True

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}

    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
        *,
        items: Sequence[GenerationItem] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Return the scripted output of each conversation, in order.

        Raises:
            ConfigError: the options are invalid, or ``items`` was not given (the mock
                answers by item id, so it needs the items alongside the conversations).
        """
        if items is None or len(items) != len(conversations):
            raise ConfigError("backend mock answers by item id: it runs in the local runner only "
                              "(not on a Ray executor); drop `executor:` for mock candidates")
        script = self._script(variant)
        outputs = [script.answer(item, conversation) for item, conversation in zip(items, conversations, strict=True)]
        _report(on_progress, len(outputs))
        return outputs

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the conversation as plain ``role: content`` lines (the mock has no chat template)."""
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in conversation)

    def close(self) -> None:
        """Forget the loaded scripts."""
        self._scripts.clear()

    def _script(self, variant: ModelVariant) -> Script:
        base_dir = variant.base_dir or Path.cwd()
        key = json.dumps([dict(variant.options), str(base_dir)], sort_keys=True, default=str)
        if key not in self._scripts:
            self._scripts[key] = load_script(variant.options, base_dir)
        return self._scripts[key]


def _report(on_progress: Callable[[int], None] | None, done: int) -> None:
    if on_progress is not None and done:
        on_progress(done)


# A scripted OpenAI-compatible chat endpoint on loopback, for fleet tests and benchmarks.
#
# It is a real HTTP server (``http.server`` in a thread) that answers ``GET /v1/models``
# and ``POST /v1/chat/completions`` the way vLLM does, so the ``openai`` SDK and the
# fleet code run unchanged against it. Its answers are scripted, not generated: the
# completion of a conversation is a hash of its messages and of the endpoint's
# ``root`` (the weights it claims to serve), so two endpoints with one root answer
# identically and a "stale" one (another root) answers differently. It can wait a fixed
# ``delay_s`` before each answer (an endpoint that is the bottleneck) and fail every
# chat request after ``fail_after`` answers (a replica that dies mid-run)::
#
#     with ScriptedEndpoint(model="tiny", delay_s=0.05) as endpoint:
#         endpoint.base_url   # http://127.0.0.1:PORT/v1

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
