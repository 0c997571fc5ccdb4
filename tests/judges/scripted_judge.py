"""A scripted judge: a real OpenAI-compatible HTTP server on loopback with fixed policies.

evalkit's ``openai`` judge client (the official SDK) talks to it as to any server. Its
verdicts follow a policy, so a test knows the right consistency figure in advance:

* ``always_a``: every pairwise verdict is ``A`` (pure position bias);
* ``fair``: the response closer to the reference wins, whatever its position;
* ``steady``: pointwise, every criterion 4 whatever the prompt;
* ``first_listed``: pointwise, the criterion listed first in the prompt gets 5 and the
  others 3 (its scores depend on the order of criteria, so repeats disagree).
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The default pairwise template, each text enclosed in its marked tag (evalkit.judges.rubric).
_PAIR = re.compile(r"Reference answer:\n<reference_answer-(\w+)>\n(.*?)\n</reference_answer-\1>\n\n"
                   r"Response A:\n<response_a-\1>\n(.*?)\n</response_a-\1>\n\n"
                   r"Response B:\n<response_b-\1>\n(.*?)\n</response_b-\1>\n\nJudge them", re.DOTALL)
_FIELD = re.compile(r'"([A-Za-z][A-Za-z0-9_]*)": <1-5>')


def _pairwise(policy: str, prompt: str) -> dict[str, Any]:
    if policy == "always_a":
        # Markup in a reply must reach the report escaped.
        return {"winner": "A", "reasoning": "A reads better. <script>alert('judge')</script>"}
    match = _PAIR.search(prompt)
    assert match is not None, "the pairwise prompt lost its sections"
    _, reference, first, second = match.groups()
    score_a = difflib.SequenceMatcher(None, reference, first).ratio()
    score_b = difflib.SequenceMatcher(None, reference, second).ratio()
    winner = "tie" if abs(score_a - score_b) < 1e-9 else ("A" if score_a > score_b else "B")
    return {"winner": winner, "reasoning": f"closer to the reference: {winner}"}


def _pointwise(policy: str, prompt: str) -> dict[str, Any]:
    fields = _FIELD.findall(prompt)
    assert fields, "the pointwise prompt lost its output format"
    if policy == "steady":
        return {**dict.fromkeys(fields, 4), "reasoning": "steady"}
    return {**{name: 5 if n == 0 else 3 for n, name in enumerate(fields)}, "reasoning": "first listed wins"}


class ScriptedJudge:
    """The server; ``requests`` counts the chat completions it answered, by kind."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.requests = {"pairwise": 0, "pointwise": 0}
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = body["messages"][-1]["content"]
                pairwise = '"winner"' in prompt
                verdict = (_pairwise if pairwise else _pointwise)(judge.policy, prompt)
                judge.requests["pairwise" if pairwise else "pointwise"] += 1
                reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                      "message": {"role": "assistant", "content": json.dumps(verdict)}}]}
                payload = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def scripted_judge(policy: str) -> Iterator[ScriptedJudge]:
    """Serve a scripted judge for the duration of the block."""
    judge = ScriptedJudge(policy)
    try:
        yield judge
    finally:
        judge.close()
