"""The suite's ``sweep:`` section: every checkpoint of a training run as a candidate.

Example::

    sweep:
      name: lora                         # candidates lora-step-10, lora-step-20, ...
      model: smollm2-135m-instruct
      checkpoints: ../adapters/classifier-lora/checkpoints   # checkpoint-N folders
      # adapters: [../adapters/a, ../adapters/b]             # or a list of adapters
      task_metric: exact_match
      benchmark: mmlu_mini               # its drop must pass max_drop for a pick
      max_drop: 3%                       # default: the benchmark's, else the suite's

``checkpoints`` is a trl output directory (its ``checkpoint-N`` folders) or the
``checkpoints/`` folder ``evalkit train`` writes with ``training.save_steps``. Every
checkpoint becomes a candidate on the same base model, so the backend holds one copy of
the base and switches adapters (:mod:`evalkit.models.hf`). The sweep's ``name`` stands
for the checkpoint the rule picks (:mod:`evalkit.sweeps.stage`): ``- lora: exact_match >= 0.8``
is a bar on the pick. This module imports nothing heavy: the suite config imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalkit.comparison.result import validate_threshold_text
from evalkit.errors import ConfigError

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SweepSpec(BaseModel):
    """A checkpoint sweep: candidates made from a training run's checkpoints or a list of adapters."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Prefix of the candidates' names, and the name bars use for the picked checkpoint."""
    model: str
    """The base model every checkpoint was trained on (as a candidate's ``model:``)."""
    checkpoints: str | None = None
    """A directory holding ``checkpoint-N`` adapter folders, relative to the suite file."""
    adapters: list[str] = Field(default_factory=list)
    """Adapter directories instead of ``checkpoints`` (named by their folder names)."""
    task_metric: str = "exact_match"
    """The task metric the pick maximises."""
    benchmark: str | None = None
    """The benchmark metric whose drop against the baseline must pass ``max_drop``."""
    max_drop: str | None = None
    """The largest tolerated benchmark drop; default: the benchmark's ``max_drop``, else the suite's."""
    backend: Literal["hf", "vllm"] = "hf"
    """The backend every checkpoint runs on (one engine or one base model for all)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype of the base."""

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '-', '.' only")
        return value

    @field_validator("max_drop")
    @classmethod
    def _threshold(cls, value: str | None) -> str | None:
        if value is not None:
            validate_threshold_text(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SweepSpec:
        if (self.checkpoints is None) == (not self.adapters):
            raise ValueError("give exactly one of `checkpoints:` (a folder of checkpoint-N) or `adapters:` (a list)")
        return self


def checkpoint_step(directory: Path) -> int | None:
    """Return N for a ``checkpoint-N`` folder, else None."""
    match = _CHECKPOINT.match(directory.name)
    return int(match.group(1)) if match else None


def sweep_members(spec: SweepSpec, base_dir: Path) -> list[tuple[str, Path, int | None]]:
    """Return (candidate name, adapter directory, step) for every checkpoint, in step order.

    Raises:
        ConfigError: the folder holds no ``checkpoint-N`` adapters, or an adapter is missing.
    """
    def resolve(text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else (base_dir / path).resolve()

    members: list[tuple[str, Path, int | None]] = []
    if spec.checkpoints is not None:
        root = resolve(spec.checkpoints)
        found = sorted((step, folder) for folder in (root.iterdir() if root.is_dir() else [])
                       if (step := checkpoint_step(folder)) is not None and (folder / "adapter_config.json").is_file())
        if not found:
            raise ConfigError(
                f"sweep.checkpoints: no checkpoint-N adapter folders in {root}; train with "
                "`training.save_steps: N` (evalkit train) or point at a trl output_dir")
        members = [(f"{spec.name}-step-{step}", folder, step) for step, folder in found]
    else:
        for text in spec.adapters:
            folder = resolve(text)
            if not (folder / "adapter_config.json").is_file():
                raise ConfigError(f"sweep.adapters: {folder} is not a peft adapter (no adapter_config.json)")
            members.append((f"{spec.name}-{folder.name}", folder, checkpoint_step(folder)))
    return members


def sweep_candidate_entries(spec: SweepSpec, base_dir: Path) -> list[dict[str, Any]]:
    """Return the candidate entries (as in ``candidates:``) a sweep expands into."""
    return [{"name": name, "model": spec.model, "adapter": str(folder), "backend": spec.backend,
             "dtype": spec.dtype} for name, folder, _ in sweep_members(spec, base_dir)]


class SweptSuite(Protocol):
    """What :func:`expand_sweep` reads and changes of a suite (an :class:`evalkit.suite.config.SuiteConfig`)."""

    @property
    def sweep(self) -> SweepSpec | None:
        """The suite's ``sweep:`` section."""

    @property
    def candidates(self) -> Sequence[Any]:
        """The suite's candidates."""

    @property
    def source(self) -> Path:
        """The suite file."""

    @property
    def base_dir(self) -> Path:
        """The directory the suite's paths are relative to."""

    def candidate(self, name: str) -> Any:
        """Return the candidate called ``name``."""

    def add_candidate(self, entry: dict[str, Any]) -> object:
        """Validate a candidate entry (as under ``candidates:``) and add it."""


def expand_sweep(suite: SweptSuite) -> None:
    """Add the sweep's checkpoints to ``suite.candidates`` (once; a no-op without ``sweep:``).

    Raises:
        ConfigError: no checkpoints, or a checkpoint's name is already a candidate's.
    """
    spec = suite.sweep
    if spec is None:
        return
    existing = {c.name for c in suite.candidates}
    if spec.name in existing:
        raise ConfigError(f"{suite.source}: sweep.name '{spec.name}' is also a candidate's name; "
                          "the sweep's name stands for its pick, so choose another")
    for entry in sweep_candidate_entries(spec, suite.base_dir):
        if entry["name"] in existing:
            if suite.candidate(entry["name"]).adapter == entry["adapter"]:
                continue  # expanded already
            raise ConfigError(f"{suite.source}: sweep candidate '{entry['name']}' clashes with a candidate")
        suite.add_candidate(entry)
