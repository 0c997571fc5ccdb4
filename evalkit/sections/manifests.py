"""The ``manifests`` section: each trained or merged candidate's ``evalkit-manifest.json``.

The ``training`` run stage (:func:`evalkit.train.candidates.record_training`) stores,
per candidate whose weights carry a manifest, the manifest's JSON form: the same keys
as :class:`evalkit.train.manifest.Manifest` (a test keeps the two in step). Manifests
written before ``command`` and ``machine`` existed read with their defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from evalkit.sections.base import SectionModel

__all__ = ["MANIFESTS", "CandidateManifest", "ManifestsSection"]

MANIFESTS = "manifests"
"""The section's name in ``run.sections``."""


class CandidateManifest(SectionModel):
    """One candidate's manifest as the run records it (see :class:`evalkit.train.manifest.Manifest`)."""

    kind: Literal["adapter", "merged"]
    """``adapter`` for a LoRA adapter, ``merged`` for a merged standalone model."""
    method: str
    """``sft`` or ``dpo`` (``unknown`` for a merge of an adapter without a manifest)."""
    base_source: str
    """The base model's source string."""
    base_fingerprint: str
    """SHA-256 of the base model's config and weights."""
    base_path: str
    """The local directory the base was loaded from (empty for a named base)."""
    data_path: str
    """The training data file, absolute (empty for a merge without an adapter manifest)."""
    data_sha256: str
    """SHA-256 of the training data file."""
    data_examples: int
    """How many examples (or pairs) the data holds."""
    config: dict[str, Any]
    """The full training config, with ``resolved_prompt``."""
    config_fingerprint: str
    """SHA-256 of the config (paths left out) and its resolved prompt."""
    prompt_hash: str
    """Hash of the prompt template trained on."""
    leakage_field: str = "input"
    """The item field compared for leakage."""
    loss_curve: list[dict[str, float]] = Field(default_factory=list)
    """``{"step", "epoch", "loss"}`` per logged step."""
    trainable_parameters: int = 0
    """Parameters the adapter trains."""
    total_parameters: int = 0
    """Parameters of the whole model."""
    seconds: float = 0.0
    """Training wall time."""
    evalkit_version: str = ""
    """The version that trained it."""
    created_at: str = ""
    """ISO timestamp (UTC)."""
    adapter_path: str | None = None
    """For a merged model, the adapter merged in."""
    adapter_hash: str | None = None
    """For a merged model, that adapter's fingerprint when merged."""
    command: str = ""
    """The command line that trained it (empty in manifests older than the field)."""
    machine: dict[str, Any] = Field(default_factory=dict)
    """CPU model and speed flags, cores, GPU, torch version and threads, precision (empty when older)."""


ManifestsSection = dict[str, CandidateManifest]
"""The ``manifests`` section: candidate name -> its manifest."""
