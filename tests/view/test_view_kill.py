"""A viewer killed (SIGKILL) while labels are being written leaves the store whole and each label whole or absent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from view_helpers import FIRST, ITEMS, csrf_of


def test_sigkill_while_labelling_leaves_every_label_whole_or_absent(view_store: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "evalkit", "view", "--store", str(view_store), "--port", "0",
                               "--author", "kill-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "serving" in line, line + (server.stderr.read() if server.stderr else "")
        url = line.split(" at ")[1].strip()
        client = httpx.Client(base_url=url, timeout=10)
        csrf = csrf_of(client.get("/").text)
        acknowledged: list[str] = []
        attempted: list[str] = []
        stop = threading.Event()

        def label_until_killed() -> None:
            for n in range(ITEMS * 50):
                if stop.is_set():
                    return
                item = f"item-{n % ITEMS:05d}"
                attempted.append(item)
                try:
                    response = client.post("/api/labels", headers={"x-csrf-token": csrf}, json={
                        "run_id": FIRST, "candidate": "lora", "item_id": item, "criterion": "pass", "value": n % 2})
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 201:
                    acknowledged.append(item)

        writer = threading.Thread(target=label_until_killed)
        writer.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 25 and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)  # mid-stream: more labels are in flight
        server.wait(timeout=30)
        stop.set()
        writer.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acknowledged) >= 25
    with sqlite3.connect(view_store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT run_id, candidate, item_id, criterion, value, author, created_at"
                            " FROM labels ORDER BY label_id").fetchall()
    # Every acknowledged label is there; nothing is there that was not asked for; each is whole.
    assert len(rows) >= len(acknowledged)
    assert [row[2] for row in rows][: len(acknowledged)] == acknowledged
    assert len(rows) <= len(attempted)
    for run_id, candidate, item_id, criterion, value, author, created in rows:
        assert (run_id, candidate, criterion, author) == (FIRST, "lora", "pass", "kill-test")
        assert item_id.startswith("item-") and value in (0.0, 1.0) and created.startswith("20")
