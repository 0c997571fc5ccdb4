"""The identity file every adapter and merged model carries: ``evalkit-manifest.json``.

A manifest records what made the weights beside it: the base model's fingerprint (a hash
of its config and weights), the training data's hash, the full training config with the
resolved prompt, the loss curve and the evalkit version. Evaluation uses it three ways:
an adapter whose base fingerprint differs from the candidate's base is refused; an
adapter whose config, data or base no longer match its train config is stale (``evalkit
run`` retrains it); a run warns when its eval data overlaps the recorded training data.
The manifest's shape, :class:`Manifest`, lives with the run section that records it
(:mod:`evalkit.train.manifests`); this module reads and writes the file.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from evalkit.errors import ModelError
from evalkit.record.environment import SPEED_FLAGS, cpu_flags, cpu_model
from evalkit.train.manifests import Manifest as Manifest
from evalkit.train.manifests import TrainingIdentity as TrainingIdentity

MANIFEST_NAME = "evalkit-manifest.json"


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into ``directory`` and return the file."""
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: Path) -> Manifest | None:
    """Return the manifest in ``directory``, or None when there is none.

    Raises:
        ModelError: the manifest exists but is not valid JSON of the right shape.
    """
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable manifest ({exc}); retrain or delete {directory}") from None
    # A shipped adapter records its data relative to itself, so it travels with the repository.
    if manifest.data_path and not Path(manifest.data_path).is_absolute():
        manifest.data_path = str((directory / manifest.data_path).resolve())
    return manifest


def portable_path(path: Path, directory: Path) -> str:
    """Return ``path`` relative to ``directory`` (where the manifest lies), as manifests record it."""
    return os.path.relpath(path.resolve(), directory.resolve())


def command_line() -> str:
    """Return this process's command line with the program's directory left out."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""


def describe_machine(precision: str) -> dict[str, Any]:
    """Return what a manifest records about the machine that trained (see :class:`Manifest`)."""
    import torch

    return {
        "cpu": cpu_model(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in cpu_flags()],
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
    }
