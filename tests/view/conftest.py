"""Fixtures for the viewer's tests: a run store of synthetic runs, and the viewer serving it on loopback."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from view_helpers import RUBRIC, build_store

from evalkit.judges.rubric import load_rubric
from evalkit.view.app import Access, ViewConfig, running


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture store, built once per session; tests copy it (labels write to it)."""
    return build_store(tmp_path_factory.mktemp("view-template") / "store.db")


@pytest.fixture
def view_store(store_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fixture store (with its run directory) for one test."""
    import shutil

    shutil.copytree(store_template.parent, tmp_path / "view", dirs_exist_ok=True)
    return tmp_path / "view" / "store.db"


@pytest.fixture
def serve() -> Callable[..., AbstractContextManager[str]]:
    """Return ``serve(store, host=..., read_only=...)``: the real viewer on uvicorn in a thread, yielding its URL."""

    def serve_(store: Path, host: str = "127.0.0.1", read_only: bool = False,
               author: str = "tester", rubrics: dict[str, list[str]] | None = None) -> Any:
        config = ViewConfig(store_path=store, access=Access.for_host(host, read_only=read_only), author=author,
                            rubrics=rubrics or {})
        return running(config, host=host)

    return serve_


@pytest.fixture(scope="session")
def rubric_criteria() -> dict[str, list[str]]:
    """The shipped classifier_quality rubric's criteria, as `evalkit view --rubric` offers them."""
    rubric = load_rubric(RUBRIC)
    return {rubric.name: list(rubric.criterion_names)}
