"""The ``manifests`` section, and the manifest itself: what made a candidate's weights.

:class:`Manifest` is the contents of ``evalkit-manifest.json``, the identity file every
adapter and merged model carries (written and read here).
The ``training`` run stage (:func:`evalkit.train.candidates.record_training`) stores,
per candidate whose weights carry one, the manifest's JSON form: the section's type is
the manifest dataclass itself, validated by pydantic. Manifests written before
``command`` and ``machine`` existed read with their defaults; a recorded manifest without
``created_at`` reads with ``""`` (the time it was made is unknown, not now).

Also in this module:

* The identity file every adapter and merged model carries: ``evalkit-manifest.json``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from evalkit.errors import DataError, ModelError
from evalkit.record.environment import SPEED_FLAGS, cpu_flags, cpu_model, utc_now
from evalkit.record.sections import parse_section

__all__ = [
    "CandidateManifest",
    "Manifest",
    "ManifestsSection",
    "TrainingIdentity",
]




@dataclass
class TrainingIdentity:
    """What an adapter trained from a config now would be: the keys staleness compares.

    Attributes:
        base_fingerprint: SHA-256 of the base model's config and weights.
        data_sha256: SHA-256 of the training data file.
        config_fingerprint: SHA-256 of the config (paths left out) and its resolved prompt.
    """

    base_fingerprint: str
    data_sha256: str
    config_fingerprint: str


@dataclass
class Manifest:
    """The contents of ``evalkit-manifest.json``, and one candidate's entry of the section.

    Attributes:
        kind: ``adapter`` for a LoRA adapter, ``merged`` for a merged standalone model.
        method: ``sft`` or ``dpo`` (``unknown`` for a merge of an adapter without a manifest).
        base_source: the base model's source string (``smollm2-135m-instruct``, a path).
        base_fingerprint: SHA-256 of the base model's config and weights.
        base_path: the local directory the base was loaded from (empty for a named base).
        data_path: the training data file, absolute (empty for a merge without an adapter manifest).
        data_sha256: SHA-256 of the training data file.
        data_examples: how many examples (or pairs) it holds.
        config: the full training config, with ``resolved_prompt``.
        config_fingerprint: see :class:`TrainingIdentity`.
        prompt_hash: hash of the prompt template trained on (as runs record it).
        leakage_field: the item field compared for leakage.
        loss_curve: ``{"step", "epoch", "loss"}`` per logged step.
        trainable_parameters: parameters the adapter trains.
        total_parameters: parameters of the whole model.
        seconds: training wall time.
        evalkit_version: the version that trained it.
        created_at: ISO timestamp (UTC).
        adapter_path: for a merged model, the adapter merged in.
        adapter_hash: for a merged model, that adapter's fingerprint when merged.
        command: the command line that trained it (program name without its directory;
            empty in manifests older than the field).
        machine: CPU model and the flags that decide training speed, cores, torch
            version and threads, and the precision training ran in (empty when older).
    """

    kind: Literal["adapter", "merged"]
    method: str
    base_source: str
    base_fingerprint: str
    base_path: str
    data_path: str
    data_sha256: str
    data_examples: int
    config: dict[str, Any]
    config_fingerprint: str
    prompt_hash: str
    leakage_field: str = "input"
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    trainable_parameters: int = 0
    total_parameters: int = 0
    seconds: float = 0.0
    evalkit_version: str = ""
    created_at: str = field(default_factory=utc_now)
    adapter_path: str | None = None
    adapter_hash: str | None = None
    command: str = ""
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form."""
        return asdict(self)

    def mismatch(self, expected: TrainingIdentity) -> str | None:
        """Return why these weights no longer match ``expected`` (None when they match)."""
        if self.base_fingerprint != expected.base_fingerprint:
            return "its base model changed"
        if self.data_sha256 != expected.data_sha256:
            return "its training data changed"
        if self.config_fingerprint != expected.config_fingerprint:
            return "its training config or prompt changed"
        return None


def _recorded_time(data: Any) -> Any:
    """Read a recorded manifest without ``created_at`` as made at an unknown time (``""``)."""
    if isinstance(data, dict) and "created_at" not in data:
        return {**data, "created_at": ""}
    return data


CandidateManifest = Annotated[Manifest, BeforeValidator(_recorded_time)]
"""One candidate's manifest as the run records it."""

ManifestsSection = dict[str, CandidateManifest]
"""The ``manifests`` section: candidate name -> its manifest."""


# The identity file every adapter and merged model carries: ``evalkit-manifest.json``.
#
# A manifest records what made the weights beside it: the base model's fingerprint (a hash
# of its config and weights), the training data's hash, the full training config with the
# resolved prompt, the loss curve and the evalkit version. Evaluation uses it three ways:
# an adapter whose base fingerprint differs from the candidate's base is refused; an
# adapter whose config, data or base no longer match its train config is stale (``evalkit
# run`` retrains it); a run warns when its eval data overlaps the recorded training data.
# The manifest's shape, :class:`Manifest`, lives with the run section that records it
# (this module); the functions below read and write the file.

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
        manifest: Manifest = parse_section(CandidateManifest, json.loads(path.read_text(encoding="utf-8")),
                                           str(path), f"retrain or delete {directory}")
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: unreadable manifest ({exc}); retrain or delete {directory}") from None
    except DataError as exc:
        raise ModelError(str(exc)) from None
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
