"""Tolerant parsing of judge replies, strict validation of what they say.

Judges wrap their JSON in prose or code fences, add trailing commas, or get cut off
after the scores. Parsing looks for the judgment wherever it is; validation is
strict: every criterion must have an integer score on the 1..5 scale. Anything else
raises :class:`MalformedJudgment`, which the caller retries a bounded number of
times and then records as a judge error, never as a score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from evalkit.judges.prompt import PAIRWISE_CHOICES
from evalkit.judges.rubric import SCALE

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


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


def _balanced_objects(text: str) -> list[str]:
    """Return every top-level ``{...}`` span of ``text``, respecting JSON strings."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = depth > 0
        elif char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : index + 1])
    return spans


def extract_json_object(text: str) -> dict[str, Any] | None:
    """Find a JSON object in a reply: bare, in a code fence, or inside prose.

    Returns:
        The last object that parses (judges put the answer last), or None.
    """
    candidates = [text.strip()]
    candidates += [block.strip() for block in _FENCE.findall(text)]
    candidates += _balanced_objects(text)
    found: dict[str, Any] | None = None
    for candidate in candidates:
        for variant in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                value = json.loads(variant)
            except (ValueError, RecursionError):  # deep nesting is a reply that does not parse
                continue
            if isinstance(value, dict):
                found = value
                break
    return found


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


def _score_position(text: str, criterion: str) -> int | None:
    match = re.search(rf'"{re.escape(criterion)}"\s*:\s*"?(\d)', text)
    return match.start(1) if match else None


def parse_pointwise(text: str, criteria: list[str]) -> ParsedJudgment:
    """Read and validate a pointwise judgment.

    Args:
        text: the judge's reply.
        criteria: the rubric's criterion names.

    Raises:
        MalformedJudgment: no JSON object, a criterion missing, not an integer, or off the scale.
    """
    data = extract_json_object(text)
    if data is None:
        # A reply cut off after its scores still says them; read them one by one.
        partial = {name: re.search(rf'"{re.escape(name)}"\s*:\s*(-?\d+)\s*[,}}\n]', text) for name in criteria}
        if not all(partial.values()):
            raise MalformedJudgment("the reply holds no JSON object with the scores")
        data = {name: int(match.group(1)) for name, match in partial.items() if match is not None}
    lowered = {str(key).strip().lower(): value for key, value in data.items()}
    scores: dict[str, int] = {}
    for name in criteria:
        if name.lower() not in lowered:
            raise MalformedJudgment(f"the judgment has no score for '{name}'")
        score = _as_score(lowered[name.lower()])
        if score is None:
            raise MalformedJudgment(f"'{name}' is {lowered[name.lower()]!r}, not an integer score")
        if score not in SCALE:
            raise MalformedJudgment(f"'{name}' is {score}, outside the scale {SCALE[0]}..{SCALE[-1]}")
        scores[name] = score
    reasoning = lowered.get("reasoning", "")
    positions = {name: pos for name in criteria if (pos := _score_position(text, name)) is not None}
    return ParsedJudgment(scores=scores, reasoning=str(reasoning) if reasoning is not None else "",
                          positions=positions)


def parse_pairwise(text: str) -> tuple[str, str]:
    """Read a pairwise verdict: ``("A" | "B" | "tie", reasoning)``.

    Raises:
        MalformedJudgment: no verdict, or one that is not A, B or tie.
    """
    data = extract_json_object(text)
    if data is None:
        raise MalformedJudgment("the reply holds no JSON object with a winner")
    lowered = {str(key).strip().lower(): value for key, value in data.items()}
    raw = lowered.get("winner")
    if raw is None:
        raise MalformedJudgment("the verdict has no 'winner'")
    normalised = str(raw).strip().strip(".").lower()
    mapping = {"a": "A", "b": "B", "tie": "tie", "response a": "A", "response b": "B", "draw": "tie"}
    if normalised not in mapping:
        raise MalformedJudgment(f"winner is {raw!r}; expected one of {', '.join(PAIRWISE_CHOICES)}")
    return mapping[normalised], str(lowered.get("reasoning", "") or "")
