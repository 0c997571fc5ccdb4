"""Endpoint fleets on real loopback HTTP endpoints (scripted OpenAI-compatible servers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from evalkit.errors import ModelError
from evalkit.models.fleet import EndpointFleet, fleet_urls
from evalkit.models.mock import ScriptedEndpoint, scripted_completion

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
        fleet(a, b, concurrency=3).complete_all(CONVERSATIONS, temperature=0.0, max_tokens=6)
    # Each endpoint sees at most `concurrency` requests at once, and (with a delay) that many.
    assert a.peak_in_flight == b.peak_in_flight == 3


@pytest.mark.parametrize(("value", "message"), [
    ([], "non-empty list"),
    (["http://a/v1", "ftp://b"], "'ftp://b' is not an http"),
    (["http://a/v1", "http://a/v1"], "twice"),
    (8000, "non-empty list"),
])
def test_bad_base_url_lists_are_named(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fleet_urls(value)


def fleet_candidate(*urls: str) -> dict[str, Any]:
    """A candidate on a model that only the endpoints have (hosted), served by ``urls``."""
    return {"name": "served", "model": "acme/tiny", "backend": "openai_server",
            "options": {"base_url": list(urls), "model": "tiny", "max_retries": 0, "concurrency": 2}}


def predictions(run: Any) -> list[tuple[str, str]]:
    return [(i.item_id, i.prediction) for i in run.candidate("served").items]


def test_a_suite_on_a_fleet_equals_one_endpoint_and_reports_the_failing_one(make_suite: Any, tmp_path: Any) -> None:
    from evalkit.api import run_suite

    generation = {"max_new_tokens": 6, "batch_size": 4}
    with ScriptedEndpoint() as working, ScriptedEndpoint(fail_after=1) as failing:  # answers the probe only
        alone = run_suite(make_suite(candidates=[fleet_candidate(working.base_url)], generation=generation),
                          store=tmp_path / "one.db", write=False)
        # The working endpoint answers its probe, then waits until the failing one has been
        # asked and failed: under load it would otherwise answer every item first.
        working.hold_after_next(failing.first_failure)
        both = run_suite(make_suite(candidates=[fleet_candidate(working.base_url, failing.base_url)],
                                    generation=generation), store=tmp_path / "two.db", write=False)
        working.hold_after_next(None)
        asked = working.answered
        grown = run_suite(make_suite(candidates=[fleet_candidate(working.base_url, failing.base_url)],
                                     generation=generation), store=tmp_path / "one.db", write=False)
        assert working.answered == asked, "adding a replica reuses the one-endpoint run's cache"
        assert predictions(grown) == predictions(alone)
    assert predictions(both) == predictions(alone), "same items, same order, same answers"
    assert both.candidate("served").identity == alone.candidate("served").identity
    endpoints = {e["url"]: e for e in both.sections["fleet"]["tiny"]}
    assert endpoints[failing.base_url]["failed"] >= 1
    assert any(failing.base_url in w and "retried on other endpoints" in w for w in both.warnings), both.warnings
    assert "fleet" not in alone.sections, "one endpoint is no fleet"


def test_a_stale_replica_stops_the_cli_run_with_exit_2(
    make_suite: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from evalkit.cli import main

    with ScriptedEndpoint() as current, ScriptedEndpoint(root="/models/tiny-v1") as stale:
        suite = make_suite(candidates=[fleet_candidate(current.base_url, stale.base_url)])
        code = main(["run", str(suite), "--store", str(tmp_path / "runs.db")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evalkit: error")]
    assert code == 2
    assert len(errors) == 1 and f"stale replica: {stale.base_url}" in errors[0]
    assert not (tmp_path / "reports").exists(), "nothing written"


def test_a_bad_fleet_url_fails_at_suite_load(make_suite: Any) -> None:
    from evalkit.errors import ConfigError
    from evalkit.suite.config import load_suite

    with pytest.raises(ConfigError, match="options.base_url lists an endpoint twice"):
        load_suite(make_suite(candidates=[fleet_candidate("http://127.0.0.1:1/v1", "http://127.0.0.1:1/v1")]))
