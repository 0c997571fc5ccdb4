"""Endpoint fleets on real loopback HTTP endpoints (scripted OpenAI-compatible servers)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from evalkit.errors import ModelError
from evalkit.models.fleet import EndpointFleet, fleet_urls
from evalkit.models.scripted_endpoint import ScriptedEndpoint, scripted_completion

CONVERSATIONS = [[{"role": "user", "content": f"ticket {n}: my order is late"}] for n in range(12)]


def fleet(*endpoints: ScriptedEndpoint | str, **options: Any) -> EndpointFleet:
    urls = [e if isinstance(e, str) else e.base_url for e in endpoints]
    options.setdefault("max_retries", 0)
    return EndpointFleet(urls, "tiny", ["EMPTY"] * len(urls), **options)


def expected(root: str = "/models/tiny", max_tokens: int = 6) -> list[str]:
    return [scripted_completion(root, c, max_tokens) for c in CONVERSATIONS]


@pytest.fixture
def two() -> Iterator[tuple[ScriptedEndpoint, ScriptedEndpoint]]:
    with ScriptedEndpoint(delay_s=0.01) as a, ScriptedEndpoint(delay_s=0.01) as b:
        yield a, b


def unused_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def test_items_spread_over_endpoints_and_come_back_in_order(two: tuple[ScriptedEndpoint, ScriptedEndpoint]) -> None:
    a, b = two
    answers = fleet(a, b, concurrency=2).complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
    assert answers == expected()
    assert a.answered > 1 and b.answered > 1, "both endpoints did part of the work"
    assert a.answered + b.answered == len(CONVERSATIONS) + 2, "every item once, plus one probe each"


def test_the_answers_do_not_depend_on_the_number_of_endpoints(two: tuple[ScriptedEndpoint, ScriptedEndpoint]) -> None:
    a, b = two
    alone = fleet(a, concurrency=3).complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
    together = fleet(a, b, concurrency=3).complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
    assert alone == together == expected()


def test_a_replica_failing_mid_run_is_retried_elsewhere_and_reported() -> None:
    with ScriptedEndpoint(fail_after=3) as failing, ScriptedEndpoint() as working:
        group = fleet(failing, working, concurrency=2)
        answers = group.complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
        report = {r["url"]: r for r in group.report()}
    assert answers == expected(), "same answers, same order, despite the failures"
    bad = report[failing.base_url]
    assert bad["failed"] >= 1 and bad["ejected"] and "500" in bad["last_error"]
    assert report[working.base_url]["completed"] + bad["completed"] == len(CONVERSATIONS)
    assert not report[working.base_url]["ejected"]


def test_a_stale_replica_fails_the_run_and_is_named() -> None:
    with ScriptedEndpoint() as current, ScriptedEndpoint() as also_current, \
            ScriptedEndpoint(root="/models/tiny-old") as stale:
        group = fleet(current, stale, also_current)
        with pytest.raises(ModelError, match=rf"stale replica: {stale.base_url}\)"):
            group.complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
        assert stale.answered == 1 and current.answered == 1, "only the probes were sent"


def test_models_check_alone_compares_the_model_cards() -> None:
    with ScriptedEndpoint() as current, ScriptedEndpoint(root="/models/tiny-old") as stale:
        with pytest.raises(ModelError, match="serve different models"):
            fleet(current, stale, check="models").verify()
        assert current.answered == 0, "fleet_check: models sends no probe"


def test_an_endpoint_serving_another_model_is_named() -> None:
    with ScriptedEndpoint() as right, ScriptedEndpoint(model="other") as wrong:
        with pytest.raises(ModelError, match=rf"{wrong.base_url} does not serve model 'tiny'.*lists: other"):
            fleet(right, wrong).verify()


def test_an_endpoint_down_at_the_check_is_left_out_and_reported(two: tuple[ScriptedEndpoint, ScriptedEndpoint]) -> None:
    a, _ = two
    down = unused_url()
    group = fleet(a, down, timeout_s=2)
    assert group.complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6) == expected()
    report = {r["url"]: r for r in group.report()}
    assert report[down]["ejected"] and "did not answer the fleet check" in report[down]["last_error"]


def test_every_endpoint_failing_is_an_error_naming_them() -> None:
    with ScriptedEndpoint(fail_after=1) as a, ScriptedEndpoint(fail_after=1) as b:
        with pytest.raises(ModelError, match="every fleet endpoint failed"):
            fleet(a, b).complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)


def test_per_endpoint_concurrency_bounds_requests_in_flight() -> None:
    with ScriptedEndpoint(delay_s=0.1) as a, ScriptedEndpoint(delay_s=0.1) as b:
        group = fleet(a, b, concurrency=3)
        group.verify()
        started = time.perf_counter()
        group.complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
        seconds = time.perf_counter() - started
    # 12 items, 2 x 3 in flight, 0.1 s each: two rounds (0.2 s); one endpoint would need four.
    assert 0.18 < seconds < 0.38, seconds


@pytest.mark.parametrize(("value", "message"), [
    ([], "non-empty list"),
    (["http://a/v1", "ftp://b"], "'ftp://b' is not an http"),
    (["http://a/v1", "http://a/v1"], "twice"),
    (8000, "non-empty list"),
])
def test_bad_base_url_lists_are_named(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fleet_urls(value)
