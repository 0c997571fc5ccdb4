"""An endpoint fleet used inside Ray workers: its per-endpoint report reaches the run, as a local one's does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.api import run_suite
from evalkit.models.mock import ScriptedEndpoint
from tests.conftest import SuiteWriter
from tests.distributed.test_ray_executor import ITEMS, RAY


def fleet_candidate(*urls: str) -> dict[str, Any]:
    return {"name": "served", "model": "tiny", "backend": "openai_server",
            "options": {"base_url": list(urls), "model": "tiny", "max_retries": 0, "concurrency": 2}}


def test_a_fleet_inside_ray_workers_reports_every_endpoint(
    ray_cluster: Any, make_suite: SuiteWriter, tmp_path: Path
) -> None:
    generation = {"max_new_tokens": 6, "batch_size": 2}
    with ScriptedEndpoint() as working, ScriptedEndpoint(fail_after=1) as failing:  # answers one probe only
        local = run_suite(make_suite(items=ITEMS[:8], candidates=[fleet_candidate(working.base_url)],
                                     generation=generation), store=tmp_path / "local.db", write=False)
        run = run_suite(make_suite(items=ITEMS[:8], candidates=[fleet_candidate(working.base_url, failing.base_url)],
                                   generation=generation, executor=RAY), store=tmp_path / "ray.db", write=False)
    assert run.sections["executor"]["chunks"] == 4, "the fleet was used inside the Ray workers"
    assert [i.prediction for i in run.candidate("served").items] == \
        [i.prediction for i in local.candidate("served").items]
    endpoints = {e["url"]: e for e in run.sections["fleet"]["tiny"]}
    assert set(endpoints) == {working.base_url, failing.base_url}
    assert endpoints[working.base_url]["completed"] >= 8 - endpoints[failing.base_url]["completed"]
    assert endpoints[failing.base_url]["failed"] >= 1 or endpoints[failing.base_url]["ejected"]
    assert any(failing.base_url in w for w in run.warnings), run.warnings
    # Usage from Ray chunks of an HTTP backend: each request's time, metered per item.
    assert run.sections["usage"]["served"]["measured_items"] == 8
