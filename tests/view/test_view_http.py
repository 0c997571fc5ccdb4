"""`evalkit view` over real HTTP: uvicorn on loopback in a thread, a real store, real requests."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from view_helpers import FIRST, ITEMS, OTHER_SUITE, RUBRIC, SECOND, csrf_of

from evalkit.cli import main
from evalkit.comparison.compare import compare_runs
from evalkit.data.items import load_items
from evalkit.judges.calibration import load_labels
from evalkit.judges.rubric import load_rubric
from evalkit.store import RunStore
from evalkit.train.lora import preference_records
from evalkit.view.app import CONTENT_SECURITY_POLICY


def label(client: httpx.Client, csrf: str, item_id: str, value: float, *, run_id: str = FIRST,
          candidate: str = "lora", criterion: str = "pass", **headers: str) -> httpx.Response:
    return client.post("/api/labels", json={"run_id": run_id, "candidate": candidate, "item_id": item_id,
                                            "criterion": criterion, "value": value},
                       headers={"x-csrf-token": csrf, **headers})


def session(url: str) -> tuple[httpx.Client, str]:
    """A browser-like session: its cookie and the CSRF token its first page carries."""
    client = httpx.Client(base_url=url, timeout=30)
    page = client.get("/")
    assert page.status_code == 200
    return client, csrf_of(page.text)


def parsed_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every start tag of a page with its attributes, as a browser's parser sees them."""
    tags: list[tuple[str, dict[str, str | None]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append((tag, dict(attrs)))

    Collector().feed(html)
    return tags


def stored_labels(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT run_id, candidate, item_id, criterion, value, author FROM labels"
                            " ORDER BY label_id").fetchall()


def test_pages_answer_with_the_runs_newest_first_and_the_safety_headers(view_store: Path, serve: Any) -> None:
    with serve(view_store) as url:
        client = httpx.Client(base_url=url)
        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert index.headers["x-content-type-options"] == "nosniff"
        assert "classifier" in index.text and "other-suite" in index.text
        assert index.text.count('<svg class="chart"') >= 2  # each suite's metrics over time
        suite = client.get("/suites/classifier").text.split('<table class="runs">')[1]
        assert suite.index(SECOND) < suite.index(FIRST)  # newest first
        assert OTHER_SUITE not in suite
        run = client.get(f"/runs/{FIRST}").text
        assert "Verdict:" in run and "exact_match" in run
        assert f"/runs/{FIRST}/report.html" in run  # its run directory is on this machine
        report = client.get(f"/runs/{FIRST}/report.html")
        assert report.status_code == 200 and "<html" in report.text
        assert f"/runs/{SECOND}/report.html" not in client.get(f"/runs/{SECOND}").text
        assert client.get("/runs/nope").status_code == 404
        assert client.get("/static/view.js").status_code == 200


def test_the_diff_shows_evalkit_compare_s_statistics_and_the_flipped_items(view_store: Path, serve: Any) -> None:
    with RunStore(view_store, read_only=True) as store:
        expected = compare_runs(store.load_run(FIRST), store.load_run(SECOND), baseline="lora", candidate="lora",
                                policy=store.thresholds(SECOND)).candidates["lora"]
    exact = expected.metrics["exact_match"]
    flipped = set(exact.pass_to_fail) | set(exact.fail_to_pass)
    assert flipped, "the fixture runs must differ on some items"
    with serve(view_store) as url:
        client = httpx.Client(base_url=url)
        page = client.get("/diff", params={"a": FIRST, "b": SECOND, "ca": "lora", "cb": "lora",
                                           "metric": "exact_match"})
        assert page.status_code == 200
        row = re.search(r'<tr class="verdict-(\w+)">\s*<td>exact_match</td>(.*?)</tr>', page.text, re.S)
        assert row is not None and row.group(1) == exact.verdict
        assert f"{exact.delta:+.3f}" in row.group(2) and f"[{exact.ci_low:+.3f}, {exact.ci_high:+.3f}]" in row.group(2)
        assert f"{exact.p_value:.3g}" in row.group(2)
        shown = set(re.findall(r'<article class="item pair-row" data-item-id="([^"]+)"', page.text))
        assert shown == flipped if len(flipped) <= 50 else shown < flipped
        assert f"{len(flipped)} item" in page.text
        # Both sides, the expected answer and each check's reason are on the row.
        assert page.text.count('class="side side-a"') == len(shown) == page.text.count('class="side side-b"')
        assert 'class="expected"' in page.text and 'class="reason"' in page.text
        # Everything paired instead of the flipped items: every item both runs have (the
        # hostile run renamed one item, so it pairs with nothing).
        everything = client.get("/diff", params={"a": FIRST, "b": SECOND, "items": "all"}).text
        assert f"{ITEMS - 1} items match" in everything
        # Two candidates of one run: by default the baseline against the next, as the run's comparison.
        within = client.get("/diff", params={"a": FIRST}).text
        assert re.search(r"<h1>base-fewshot in .*? against base in ", within)
        with RunStore(view_store, read_only=True) as store:
            stored = store.load_run(FIRST).sections["comparison"]["candidates"]["base-fewshot"]["metrics"]
        row = re.search(r'<tr class="verdict-(\w+)">\s*<td>exact_match</td>', within)
        assert row is not None and row.group(1) == stored["exact_match"]["verdict"]


def test_filters_live_in_the_url_and_pages_are_bounded(view_store: Path, serve: Any) -> None:
    with serve(view_store) as url:
        client = httpx.Client(base_url=url)
        first = client.get(f"/runs/{FIRST}/items", params={"candidate": "base"}).text
        ids = re.findall(r'<article class="item" data-item-id="([^"]+)"', first)
        assert len(ids) == 50 and f"{ITEMS} items match" in first
        second = client.get(f"/runs/{FIRST}/items", params={"candidate": "base", "page": 1}).text
        assert not set(ids) & set(re.findall(r'data-item-id="([^"]+)"', second))
        failing = client.get(f"/runs/{FIRST}/items", params={"candidate": "base", "failing": "1",
                                                              "metric": "json_valid"}).text
        with RunStore(view_store, read_only=True) as store:
            base = store.load_run(FIRST).candidate("base")
        broken = [i.item_id for i in base.items if i.scores["json_valid"].value < 1]
        assert f"{len(broken)} item" in failing and 0 < len(broken) < ITEMS
        assert set(re.findall(r'<article class="item" data-item-id="([^"]+)"', failing)) == set(broken[:50])
        regex = client.get(f"/runs/{FIRST}/items", params={"candidate": "base", "q": "^Sure!", "where": "output"})
        sure = [i.item_id for i in base.items if i.prediction.startswith("Sure!")]
        assert f"{len(sure)} item" in regex.text
        bad = client.get(f"/runs/{FIRST}/items", params={"q": "(a"})
        assert bad.status_code == 400 and "RE2" in bad.text


def test_hostile_outputs_stay_text(view_store: Path, serve: Any) -> None:
    with serve(view_store) as url:
        client = httpx.Client(base_url=url)
        page = client.get("/diff", params={"a": FIRST, "b": SECOND, "ca": "lora", "cb": "lora", "items": "all"}).text
        assert "__pwned" in page  # the hostile rows are on the page...
        assert "<script>window.__pwned" not in page and "<img src=x" not in page  # ...as text only
        assert "&lt;script&gt;window.__pwned" in page
        tags = parsed_tags(page)
        assert [attrs for tag, attrs in tags if tag == "script"] == [{"src": "/static/view.js", "defer": None}]
        assert [tag for tag, _ in tags if tag in ("img", "iframe", "object", "embed", "textarea")] == []
        assert [(tag, a) for tag, attrs in tags for a in attrs if a.startswith("on")] == []
        assert [v for _, attrs in tags for v in attrs.values() if (v or "").lower().startswith("javascript:")] == []


def test_another_host_needs_the_printed_token(view_store: Path, serve: Any) -> None:
    with serve(view_store, host="0.0.0.0") as url:
        token = url.split("?token=")[1]
        bare = url.split("?")[0]
        assert httpx.get(bare).status_code == 403
        assert httpx.get(bare + "?token=wrong").status_code == 403
        assert httpx.post(bare + "api/labels", json={}).status_code == 403
        client = httpx.Client(base_url=bare)
        traded = client.get(f"/?token={token}")  # trades the token for a cookie, drops it from the URL
        assert traded.status_code == 303 and traded.headers["location"] == "/"
        assert client.get("/").status_code == 200
        assert httpx.get(bare, headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_loopback_answers_only_loopback_host_names(view_store: Path, serve: Any) -> None:
    with serve(view_store) as url:
        assert httpx.get(url).status_code == 200
        # A rebinding DNS name pointing at 127.0.0.1 reaches the socket but not the app.
        assert httpx.get(url, headers={"host": "attacker.example"}).status_code == 403


def test_writes_need_the_session_s_csrf_token(view_store: Path, serve: Any) -> None:
    with serve(view_store) as url:
        client, csrf = session(url)
        assert label(client, "", "item-00001", 1).status_code == 403
        assert label(client, "0" * 64, "item-00001", 1).status_code == 403
        _other, other_csrf = session(url)
        assert label(client, other_csrf, "item-00001", 1).status_code == 403  # another session's token
        assert label(client, csrf, "item-00001", 1, origin="http://attacker.example").status_code == 403
        assert stored_labels(view_store) == []
        made = label(client, csrf, "item-00001", 1)
        assert made.status_code == 201, made.text
        assert stored_labels(view_store) == [(FIRST, "lora", "item-00001", "pass", 1.0, "tester")]
        # Invalid labels are refused with a reason and write nothing.
        assert label(client, csrf, "item-00001", 3).status_code == 400
        assert label(client, csrf, "no-such-item", 1).status_code == 400
        assert label(client, csrf, "item-00001", 7, criterion="classifier_quality.format").status_code == 400
        assert len(stored_labels(view_store)) == 1
        # Undo deletes the label; the model's results never change.
        undone = client.post(f"/api/labels/{made.json()['label']['label_id']}/undo",
                             headers={"x-csrf-token": csrf})
        assert undone.status_code == 200 and stored_labels(view_store) == []
        with RunStore(view_store, read_only=True) as store:
            assert store.load_run(FIRST).candidate("lora").items[1].scores  # untouched


def test_read_only_refuses_every_write(view_store: Path, serve: Any) -> None:
    with serve(view_store, read_only=True) as url:
        client, csrf = session(url)
        page = client.get(f"/runs/{FIRST}/items").text
        assert "read-only" in page and 'class="mark pass"' not in page
        refused = label(client, csrf, "item-00001", 1)
        assert refused.status_code == 403 and "read-only" in refused.text
    assert stored_labels(view_store) == []


def test_two_browsers_labelling_at_once_lose_nothing(view_store: Path, serve: Any) -> None:
    per_writer = 40
    with serve(view_store) as url:
        failures: list[str] = []

        def writer(offset: int) -> None:
            client, csrf = session(url)
            for n in range(per_writer):
                response = label(client, csrf, f"item-{offset + n:05d}", n % 2)
                if response.status_code != 201:
                    failures.append(response.text)

        threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, per_writer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    stored = stored_labels(view_store)
    assert len(stored) == 2 * per_writer
    assert {row[2] for row in stored} == {f"item-{n:05d}" for n in range(2 * per_writer)}


def test_labels_export_to_what_calibration_and_dpo_read(view_store: Path, serve: Any, tmp_path: Path,
                                                        rubric_criteria: dict[str, list[str]]) -> None:
    rubric = load_rubric(RUBRIC)
    with serve(view_store, rubrics=rubric_criteria) as url:
        client, csrf = session(url)
        page = client.get(f"/runs/{FIRST}/items").text
        assert 'data-criterion="classifier_quality.accuracy"' in page  # --rubric criteria offered
        for criterion, score in zip(rubric.criterion_names, (5, 3, 4), strict=True):
            assert label(client, csrf, "item-00002", score, criterion=f"classifier_quality.{criterion}").is_success
        # One item, two outputs: lora's labelled pass, base's fail -> one preference pair.
        assert label(client, csrf, "item-00004", 1, candidate="lora").is_success
        assert label(client, csrf, "item-00004", 0, candidate="base").is_success
    out = tmp_path / "exports"
    out.mkdir()
    store = str(view_store)
    assert main(["labels", "export", "--store", store, "--format", "calibration", "--rubric", str(RUBRIC),
                 "--out", str(out / "calibration.jsonl")]) == 0
    examples = load_labels(out / "calibration.jsonl", rubric)
    assert [(e.scores, e.prediction != "") for e in examples] == [({"format": 5, "accuracy": 3, "style": 4}, True)]
    assert main(["labels", "export", "--store", store, "--format", "dpo", "--out", str(out / "dpo.jsonl")]) == 0
    pairs = preference_records(load_items(out / "dpo.jsonl"), out / "dpo.jsonl")
    with RunStore(view_store, read_only=True) as opened:
        run = opened.load_run(FIRST)
    lora, base = (next(i for i in run.candidate(n).items if i.item_id == "item-00004") for n in ("lora", "base"))
    assert pairs == [{"prompt": [{"role": "user", "content": lora.prompt}],
                      "chosen": [{"role": "assistant", "content": lora.prediction}],
                      "rejected": [{"role": "assistant", "content": base.prediction}]}]
    assert main(["labels", "export", "--store", store, "--format", "jsonl", "--out", str(out / "raw.jsonl")]) == 0
    raw = [json.loads(line) for line in (out / "raw.jsonl").read_text().splitlines()]
    assert len(raw) == 5 and {r["author"] for r in raw} == {"tester"}


def test_nothing_to_export_is_exit_2_and_writes_nothing(view_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "dpo.jsonl"
    assert main(["labels", "export", "--store", str(view_store), "--format", "dpo", "--out", str(target)]) == 2
    assert not target.exists()
    assert main(["labels", "export", "--store", str(view_store), "--format", "calibration",
                 "--out", str(target)]) == 2
    assert main(["view", "--store", str(tmp_path / "missing.db")]) == 2


@pytest.mark.parametrize("port", [-1, 70000])
def test_a_bad_port_is_a_usage_error(view_store: Path, port: int) -> None:
    assert main(["view", "--store", str(view_store), "--port", str(port)]) == 2
