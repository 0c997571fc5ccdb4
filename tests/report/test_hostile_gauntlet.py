"""A hostile-output gauntlet, end to end: a scripted OpenAI-compatible server on loopback answers
with deep nesting, lone surrogates, NUL, rich markup, ``</script>`` and a 1 MB answer; the run
finishes, every item is scored with a reason, the results are stored, and the report opened
in headless Chromium runs no code, logs no error and requests nothing.

The server is a real ``ThreadingHTTPServer`` speaking the two endpoints evalkit's
``openai_server`` backend uses (``GET /v1/models``, ``POST /v1/chat/completions``) through
the official ``openai`` SDK; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.cli import main
from evalkit.store import RunStore

pytestmark = pytest.mark.browser

REFERENCE = {"severity": "low", "[/]": "markup field", "category": "billing"}
GOOD = json.dumps(REFERENCE)
ONE_MB = "x" * 1_000_000
SCRIPT = "</script><script>alert(1)</script>"
# item id -> what the hostile model answers for it
HOSTILE_ANSWERS = {
    "deep-open": "[" * 3000,
    "deep-balanced": "[" * 3000 + "]" * 3000,
    "surrogates": '{"severity": "\ud800low\udfff", "category": "billing"}',
    "nul": '{"severity": "low\x00", "category": "billing"}\x00',
    "markup-[/]": "[/] [bold red]not a tag[/bold red] [link=https://example.invalid]x[/link]",
    "script": f'{{"severity": "{SCRIPT}", "category": "billing"}} {SCRIPT}',
    "one-mb": ONE_MB,
    "one-mb-json": json.dumps({"severity": ONE_MB, "category": "billing"}),
}
CHECK_METRICS = {"exact_match", "json_valid", "json_schema", "field_accuracy", "regex"}


class _Handler(BaseHTTPRequestHandler):
    """Answers ``m-base`` with the reference and ``m-hostile`` with the item's hostile answer."""

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: Any) -> None:
        # json.dumps escapes lone surrogates as \udXXX, as a server written in any language may.
        data = json.dumps(body).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/v1/models"):
            self._send(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "gauntlet"}
                for name in ("m-base", "m-hostile")]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if not self.path.rstrip("/").endswith("/v1/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        item_id = body["messages"][-1]["content"].rsplit("case ", 1)[-1].strip()
        text = GOOD if body["model"] == "m-base" else HOSTILE_ANSWERS[item_id]
        self.server.requests.append(body["model"])  # type: ignore[attr-defined]
        self._send(200, {
            "id": "chatcmpl-gauntlet", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[ThreadingHTTPServer]:
    """The scripted server on a free loopback port, for the module."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class GauntletRun:
    """What ``evalkit run`` on the gauntlet suite left behind."""

    exit_code: int
    out: str
    err: str
    run_dir: Path
    store: Path


@pytest.fixture(scope="module")
def gauntlet(hostile_server: ThreadingHTTPServer, tmp_path_factory: pytest.TempPathFactory) -> GauntletRun:
    """Write the suite, run ``evalkit run`` on it once (in-process), return what it left."""
    root = tmp_path_factory.mktemp("gauntlet")
    (root / "data").mkdir()
    rows = [{"id": item_id, "input": f"Classify case {item_id}", "output": GOOD} for item_id in HOSTILE_ANSWERS]
    (root / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "suites").mkdir()
    (root / "suites" / "schema.json").write_text(json.dumps({
        "type": "object", "required": ["severity", "category"],
        "properties": {"severity": {"enum": ["low", "high"]}, "category": {"type": "string"}}}))
    base_url = f"http://127.0.0.1:{hostile_server.server_address[1]}/v1"
    options = {"base_url": base_url, "max_retries": 0, "timeout_s": 30, "concurrency": 2}
    suite = {
        "name": "gauntlet",
        "dataset": {"path": "../data/eval.jsonl", "id_field": "id"},
        "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
        "generation": {"max_new_tokens": 16},
        "candidates": [
            {"name": "base", "model": "m-base", "backend": "openai_server", "options": options},
            {"name": "hostile", "model": "m-hostile", "backend": "openai_server", "options": options},
        ],
        "checks": ["exact_match", "json_valid", {"json_schema": "schema.json"}, "field_accuracy",
                   {"regex": {"pattern": '"severity": "(low|high)"'}}],
        "output_dir": "../reports",
    }
    suite_path = root / "suites" / "gauntlet.yaml"
    suite_path.write_text(yaml.safe_dump(suite, sort_keys=False))
    store = root / "evalkit.db"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(suite_path), "--store", str(store)])
    run_dirs = [p for p in (root / "reports" / "gauntlet").iterdir() if not p.name.startswith(".")]
    assert len(run_dirs) == 1, (out.getvalue(), err.getvalue())
    return GauntletRun(code, out.getvalue(), err.getvalue(), run_dirs[0], store)


def test_the_run_finishes_without_a_traceback(gauntlet: GauntletRun) -> None:
    # 1: the hostile candidate regressed against the base, which is the right verdict.
    assert gauntlet.exit_code in (0, 1), gauntlet.err
    assert "Traceback" not in gauntlet.out + gauntlet.err
    assert "field_accuracy.[/]" in gauntlet.out  # markup in a field name printed as text


def test_every_item_is_scored_with_a_reason(gauntlet: GauntletRun) -> None:
    lines = (gauntlet.run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    hostile = {r["item_id"]: r for r in records if r["candidate"] == "hostile"}
    assert set(hostile) == set(HOSTILE_ANSWERS)
    for item_id, record in hostile.items():
        assert CHECK_METRICS <= set(record["scores"]), item_id
        for metric, score in record["scores"].items():
            assert 0.0 <= score["value"] <= 1.0
            assert score["value"] == 1.0 or score["reason"], f"{item_id} {metric}: failed without a reason"
    assert hostile["deep-open"]["scores"]["json_valid"]["reason"].startswith("not JSON")
    assert hostile["deep-balanced"]["scores"]["json_valid"]["reason"].startswith("not JSON")
    assert hostile["surrogates"]["prediction"] == HOSTILE_ANSWERS["surrogates"]  # lossless in JSON files
    assert hostile["one-mb"]["prediction"] == ONE_MB


def test_the_store_holds_every_answer(gauntlet: GauntletRun) -> None:
    summary = json.loads((gauntlet.run_dir / "summary.json").read_text(encoding="utf-8"))
    with RunStore(gauntlet.store) as store:
        run = store.load_run(summary["run_id"])
    predictions = {item.item_id: item.prediction for item in run.candidate("hostile").items}
    assert set(predictions) == set(HOSTILE_ANSWERS)
    assert predictions["nul"] == HOSTILE_ANSWERS["nul"]  # NUL kept
    assert predictions["surrogates"] == HOSTILE_ANSWERS["surrogates"].replace("\ud800", "\ufffd").replace(
        "\udfff", "\ufffd")  # SQLite text is UTF-8: a lone surrogate is stored as U+FFFD
    assert predictions["one-mb"] == ONE_MB
    assert predictions["script"] == HOSTILE_ANSWERS["script"]


def test_the_report_bounds_what_it_shows(gauntlet: GauntletRun) -> None:
    report = gauntlet.run_dir / "report.html"
    # Two 1 MB answers are cut to a few kB each; the page stays small.
    assert report.stat().st_size < 600_000
    html = report.read_text(encoding="utf-8")
    assert SCRIPT not in html  # neither escaped text nor embedded JSON carries a raw </script>
    assert "characters in all" in html


def test_the_report_runs_no_code_and_requests_nothing(gauntlet: GauntletRun, open_report: Any) -> None:
    page, events = open_report(gauntlet.run_dir / "report.html")
    page.fill("#f-search", "alert(1)")
    page.wait_for_timeout(400)  # the search box waits 150 ms for typing to pause
    shown = " ".join(page.locator("#f-list pre.text").all_inner_texts())
    assert SCRIPT in shown  # the hostile text is there, as text
    page.fill("#f-search", "")
    page.wait_for_timeout(400)
    assert events.dialogs == []
    assert events.errors == []
    assert [m for m in events.console if m[0] in ("error", "warning")] == []
    assert [url for url in events.requests if not url.startswith("file://")] == []
