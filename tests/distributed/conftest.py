"""A real local Ray cluster for the distributed tests: started once in-process, on 2 CPUs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """Start a two-CPU Ray head in this process (the executor reuses it) and stop it at the end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             namespace="evalkit")
    yield ray
    ray.shutdown()
