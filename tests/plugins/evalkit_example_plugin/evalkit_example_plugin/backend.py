"""``echo_upper``: a backend that answers each conversation's last message in capitals.

Deterministic and model-free (the candidate's ``model:`` is resolved by evalkit but never
loaded), so a test can predict every score. A real backend loads its model here, once,
and imports its heavy libraries inside its methods.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.models.backend import Message, ModelVariant, ProgressCallback, register_backend
from evalkit.suite.config import GenerationConfig


@register_backend("echo_upper")
class EchoUpperBackend:
    """Answers the last message of each conversation, upper-cased."""

    def generate(self, variant: ModelVariant, conversations: Sequence[list[Message]], settings: GenerationConfig,
                 on_progress: ProgressCallback | None = None) -> list[str]:
        """Return one answer per conversation, in order."""
        answers = [conversation[-1]["content"].upper() for conversation in conversations]
        if on_progress is not None:
            on_progress(len(answers))
        return answers

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return what the backend answers from: the conversation's messages, one per line."""
        return "\n".join(message["content"] for message in conversation)

    def close(self) -> None:
        """Nothing to free: no model is loaded."""
