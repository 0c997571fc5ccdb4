"""What a judge was asked and what it answered, kept per judged item for review.

``judges.<key>.transcripts[candidate][item_id]`` is a list of ``{"label", "messages",
"reply"}``: the exact chat messages sent (each clipped to :data:`MAX_MESSAGE_CHARS`) and
the judge's raw reply (its reasoning when the judge gives no text, as the local judge,
which reads score probabilities). The report shows them collapsed, escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.judges.clients import Judgment, PairwiseJudgment
from evalkit.prompting import Message

MAX_MESSAGE_CHARS = 4000


def clip_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut here; {len(text):,} characters in all]"


def transcript(label: str, messages: Sequence[Message], judgment: Judgment | PairwiseJudgment | None,
               error: str = "") -> dict[str, Any]:
    """Return one judged question as stored in the section.

    Args:
        label: which question this was (``repeat 2``, ``candidate shown as A``...).
        messages: the exact messages sent to the judge.
        judgment: what came back, or None when the judgment failed.
        error: the failure's message, when it failed.
    """
    if judgment is None:
        reply = f"(no judgment: {error})" if error else "(no judgment)"
    else:
        reply = judgment.raw or judgment.reasoning
    return {"label": label,
            "messages": [{"role": m["role"], "content": clip_text(m["content"])} for m in messages],
            "reply": clip_text(reply)}
