"""Reading judge replies: the verdict comes only from the reply's own JSON object.

A judgment is read from a structured reply: the whole reply is one JSON object (as
JSON-schema structured output returns it), optionally inside one code fence. Prose
before or after the object is refused, not searched: a judge that quotes the judged
text could otherwise hand over a verdict the candidate wrote (a forged
``{"accuracy": 5}`` in its output). Within the object the reading is tolerant of what
judges do: trailing commas, keys in another case, scores written as ``"4"``, ``4.0`` or
``"4/5"``, and a reply cut off after its scores (the members read before the cut count).
Validation is strict: every criterion must have an integer score on the 1..5 scale, and
a key may appear once. Anything else raises :class:`MalformedJudgment`, which the
caller retries a bounded number of times and then records as a judge error, never as a
score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from evalkit.judges.prompt import PAIRWISE_CHOICES
from evalkit.judges.rubric import SCALE

_WHITESPACE = re.compile(r"\s*")
_FENCE_OPEN = re.compile(r"\s*```(?:json|JSON)?[ \t]*\n?")
_FENCE_CLOSE = re.compile(r"\s*```\s*")
_DECODER = json.JSONDecoder()


class MalformedJudgment(Exception):
    """A reply holds no usable judgment; the message says what was wrong (and is shown).

    Attributes:
        reply: the reply text, so a retry can show the judge what it got wrong.
    """

    def __init__(self, message: str, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class ParsedJudgment:
    """Scores read from a reply.

    Attributes:
        scores: criterion -> integer score on the scale.
        reasoning: the judge's reasoning text (may be empty).
        positions: criterion -> character offset of its score digit in the reply, when
            known, so token logprobs can be matched to it.
    """

    scores: dict[str, int]
    reasoning: str
    positions: dict[str, int]


@dataclass(frozen=True)
class ReplyObject:
    """The top-level members of a reply's JSON object.

    Attributes:
        members: lower-cased key -> value.
        offsets: lower-cased key -> character offset of its value in the reply.
        complete: the object closed (False: the reply was cut off, ``members`` holds
            what came before the cut).
    """

    members: dict[str, Any]
    offsets: dict[str, int]
    complete: bool


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def read_reply_object(text: str) -> ReplyObject:
    """Read the JSON object a whole reply consists of (optionally in one code fence).

    Members are read one by one from the object's start, so a reply cut off after some
    of them still gives those; nothing outside the object is ever read.

    Raises:
        MalformedJudgment: the reply does not start with a JSON object, has text after
            it, names a key twice, or breaks off before its first member.
    """
    fence = _FENCE_OPEN.match(text)
    index = _skip(text, fence.end() if fence else 0)
    if index >= len(text) or text[index] != "{":
        raise MalformedJudgment("the reply must be only the JSON object asked for (prose around it is not read)")
    index += 1
    members: dict[str, Any] = {}
    offsets: dict[str, int] = {}
    complete = False
    while True:
        index = _skip(text, index)
        if index < len(text) and text[index] == "}":
            index, complete = index + 1, True
            break
        if index >= len(text) or text[index] != '"':
            break
        try:
            key, index = _DECODER.raw_decode(text, index)  # a JSON string: the member's key
            index = _skip(text, index)
            if index >= len(text) or text[index] != ":":
                break
            value_at = _skip(text, index + 1)
            value, index = _DECODER.raw_decode(text, value_at)
        except (ValueError, RecursionError):  # cut off, or nested past reason
            break
        if index >= len(text) and isinstance(value, int | float) and not isinstance(value, bool):
            break  # a number at the very end may have been cut short ("4" of "45")
        name = key.strip().lower()
        if name in members:
            raise MalformedJudgment(f"the judgment names '{key}' more than once")
        members[name], offsets[name] = value, value_at
        index = _skip(text, index)
        if index < len(text) and text[index] == ",":
            index += 1
    if complete:
        rest = text[index:]
        closing = _FENCE_CLOSE.match(rest) if fence else None
        if closing:
            rest = rest[closing.end():]
        if rest.strip():
            raise MalformedJudgment("the reply must be only the JSON object asked for (text follows it)")
    elif not members:
        raise MalformedJudgment("the reply holds no complete JSON member")
    return ReplyObject(members, offsets, complete)


def _as_score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d+)(?:\s*/\s*5)?\s*", value)
        if match:
            return int(match.group(1))
    return None


def parse_pointwise(text: str, criteria: list[str]) -> ParsedJudgment:
    """Read and validate a pointwise judgment from a reply that is one JSON object.

    Args:
        text: the judge's reply.
        criteria: the rubric's criterion names.

    Raises:
        MalformedJudgment: not a lone JSON object, a criterion missing, not an integer, or off the scale.
    """
    reply = read_reply_object(text)
    scores: dict[str, int] = {}
    positions: dict[str, int] = {}
    for name in criteria:
        key = name.lower()
        if key not in reply.members:
            cut = "" if reply.complete else " (the reply was cut off before it)"
            raise MalformedJudgment(f"the judgment has no score for '{name}'{cut}")
        value = reply.members[key]
        score = _as_score(value)
        if score is None:
            raise MalformedJudgment(f"'{name}' is {value!r}, not an integer score")
        if score not in SCALE:
            raise MalformedJudgment(f"'{name}' is {score}, outside the scale {SCALE[0]}..{SCALE[-1]}")
        scores[name] = score
        # The digit itself: past the opening quote of a score written as a string.
        positions[name] = reply.offsets[key] + (1 if isinstance(value, str) else 0)
    reasoning = reply.members.get("reasoning", "")
    return ParsedJudgment(scores=scores, reasoning=str(reasoning) if reasoning is not None else "",
                          positions=positions)


def parse_pairwise(text: str) -> tuple[str, str]:
    """Read a pairwise verdict, ``("A" | "B" | "tie", reasoning)``, from a reply that is one JSON object.

    Raises:
        MalformedJudgment: not a lone JSON object, no verdict, or one that is not A, B or tie.
    """
    reply = read_reply_object(text)
    raw = reply.members.get("winner")
    if raw is None:
        raise MalformedJudgment("the verdict has no 'winner'")
    normalised = str(raw).strip().strip(".").lower()
    mapping = {"a": "A", "b": "B", "tie": "tie", "response a": "A", "response b": "B", "draw": "tie"}
    if normalised not in mapping:
        raise MalformedJudgment(f"winner is {raw!r}; expected one of {', '.join(PAIRWISE_CHOICES)}")
    return mapping[normalised], str(reply.members.get("reasoning", "") or "")
