"""Fixtures for the benchmark tests: a tiny-model backend and the real SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.models.sources import resolve_model


@pytest.fixture(autouse=True)
def private_benchmark_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test scores into its own benchmark results cache, never the user's."""
    import evalkit.benchmarks.evaluate as cache_module

    path = tmp_path / "benchmarks.sqlite"
    monkeypatch.setattr(cache_module, "default_cache_path", lambda: path)
    return path


@pytest.fixture(scope="session")
def tiny_backend() -> HFBackend:
    return HFBackend(device=torch.device("cpu"))


@pytest.fixture(scope="session")
def tiny_variant(tiny_model_dir: Path) -> ModelVariant:
    return ModelVariant(resolve_model(str(tiny_model_dir)), dtype="float32")


@pytest.fixture(scope="session")
def smollm2_variant() -> ModelVariant:
    return ModelVariant(resolve_model("smollm2-135m-instruct"), dtype="float32")


@pytest.fixture(scope="session")
def smollm2_backend() -> HFBackend:
    return HFBackend(device=torch.device("cpu"))
