"""The pydantic base every suite, train and rubric model uses: unknown keys are errors.

A leaf module (pydantic only), so that every config module, however low, can share it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=False)
