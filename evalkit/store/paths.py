"""Where the run store lives: ``--store``, a suite's ``store:``, ``$EVALKIT_STORE``, or the data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.files.home import store_file

if TYPE_CHECKING:
    from evalkit.suite.config import SuiteConfig

STORE_FILENAME = "evalkit.db"
STORE_ENV = "EVALKIT_STORE"


def default_store_path() -> Path:
    """Return ``$EVALKIT_STORE`` if set, else ``evalkit.db`` in the data directory (see :mod:`evalkit.files.home`)."""
    override = os.environ.get(STORE_ENV)
    if override:
        return Path(override).expanduser()
    return store_file(STORE_FILENAME)


def resolve_store_path(suite: SuiteConfig | None = None, override: str | Path | None = None) -> Path:
    """Return the store a run uses: ``--store``, else the suite's ``store:``, else the default."""
    if override is not None:
        return Path(override).expanduser().resolve()
    if suite is not None and suite.store:
        return suite.resolve(suite.store)
    return default_store_path()
