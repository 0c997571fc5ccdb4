"""Judges behind an HTTP API: ``anthropic`` (Messages API) and ``openai`` (Chat Completions).

Both use the official SDKs with their own retries off (``max_retries=0``): retries are
counted and bounded in :mod:`evalkit.judges.judging`. Keys come from the environment
only and live only inside the SDK client; a server at a custom ``base_url`` that needs
no key (vLLM on loopback) gets a placeholder.

Where the server offers token logprobs (OpenAI-compatible servers), each criterion's
score is the probability-weighted mean over the score tokens 1..5 at the position
where the judge wrote it, like the local judge; otherwise it is the integer written.
When the API supports structured output, the reply is constrained to the judgment's
JSON schema; a server that rejects the schema or logprobs is asked again without.

Every response received adds its ``usage`` (the tokens the API billed) and its wall time
to the judge's ``usage`` (:class:`evalkit.usage.stage.RequestTally`); the judges stage prices
it (see :mod:`evalkit.usage.stage`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.errors import JudgeError
from evalkit.judges.clients import (
    Judgment,
    PairwiseJudgment,
    TransientJudgeError,
    UnjudgeableItem,
    register_provider,
    weighted_score,
)
from evalkit.judges.parsing import MalformedJudgment, ParsedJudgment, parse_pairwise, parse_pointwise
from evalkit.judges.prompt import judgment_schema, pairwise_schema
from evalkit.judges.rubric import SCALE, Rubric
from evalkit.judges.spec import JudgeClientSpec
from evalkit.models.api_keys import PLACEHOLDER_KEY, read_api_key, redact
from evalkit.prompting import Message
from evalkit.usage.stage import RequestTally

# Statuses worth a retry: rate limits, timeouts, conflicts, server errors, overload.
_TRANSIENT_STATUS = {408, 409, 425, 429}
_SCORE_TOKENS = {str(s) for s in SCALE}


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated token with its alternatives.

    Attributes:
        token: the token's text.
        alternatives: token text -> logprob of the top alternatives (the token included).
    """

    token: str
    alternatives: dict[str, float]


@dataclass(frozen=True)
class ChatReply:
    """A judge's reply text, with per-token logprobs when the server gave them."""

    text: str
    tokens: list[TokenLogprobs] | None = None


def api_key(spec: JudgeClientSpec) -> str:
    """Read the judge's API key from its environment variable.

    A custom ``base_url`` (a local server) may need no key: a placeholder is used.

    Raises:
        ConfigError: the key would go over plain http to another host.
        JudgeError: the variable is unset and the provider's own endpoint is used.
    """
    name = spec.key_env or ""
    # Refuses a key bound for plain http off this machine (see evalkit.models.api_keys).
    value = read_api_key(name, spec.base_url, "judge base_url") if name else None
    if value:
        return value
    if spec.base_url:
        return PLACEHOLDER_KEY
    raise JudgeError(
        f"judge {spec.label()}: set the environment variable {name} to your API key "
        "(keys are read from the environment only, never from suite files)"
    )


def _retry_after(response: Any) -> float | None:
    """Read the wait a server asked for, as the official SDKs do.

    ``retry-after-ms`` first, then ``retry-after`` in seconds or as an HTTP date; a value
    outside (0, 60] s is ignored (the SDKs then use their own backoff). The wait is
    capped again by :func:`evalkit.judges.judging.backoff_delay`.
    """
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    seconds: float | None = None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            seconds = float(ms) / 1000
        elif (value := headers.get("retry-after")) is not None:
            try:
                seconds = float(value)
            except ValueError:
                from email.utils import parsedate_to_datetime

                seconds = parsedate_to_datetime(value).timestamp() - time.time()
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    return seconds if seconds is not None and 0 < seconds <= 60 else None


def score_from_logprobs(
    reply: ChatReply, parsed: ParsedJudgment, criterion: str
) -> tuple[float, dict[int, float]] | None:
    """Weight a criterion's score by the logprobs of the token where it was written.

    Returns:
        (weighted mean, distribution), or None when the token cannot be matched.
    """
    position = parsed.positions.get(criterion)
    if reply.tokens is None or position is None:
        return None
    offset = 0
    for token in reply.tokens:
        end = offset + len(token.token)
        if offset <= position < end:
            if token.token.strip() != str(parsed.scores[criterion]):
                return None  # the digit shares its token with other text: no clean distribution
            probabilities: dict[int, float] = {}
            for text, logprob in token.alternatives.items():
                if text.strip() in _SCORE_TOKENS and math.isfinite(logprob):
                    score = int(text.strip())
                    probabilities[score] = probabilities.get(score, 0.0) + math.exp(logprob)
            try:
                return weighted_score(probabilities)
            except ValueError:
                return None
        offset = end
    return None


class ChatJudge:
    """What both API judges share: parse the reply, weight by logprobs, fall back politely."""

    concurrency: int

    def __init__(self, spec: JudgeClientSpec) -> None:
        """Keep the spec; subclasses build the SDK client."""
        self.spec = spec
        self.concurrency = spec.concurrency
        self.identity = f"{spec.provider}:{spec.model}@{spec.base_url or 'default'}"
        self.structured = spec.structured_output
        self.usage = RequestTally()

    def chat(self, messages: list[Message], schema: dict[str, Any] | None) -> ChatReply:
        """Send the conversation; return the reply (subclasses implement)."""
        raise NotImplementedError

    def _ask(self, messages: list[Message], schema: dict[str, Any]) -> ChatReply:
        return self.chat(messages, schema if self.structured else None)

    def pointwise(self, messages: list[Message], rubric: Rubric) -> Judgment:
        """Score one prediction; see :class:`evalkit.judges.clients.JudgeClient`."""
        reply = self._ask(messages, judgment_schema(rubric))
        try:
            parsed = parse_pointwise(reply.text, rubric.criterion_names)
        except MalformedJudgment as exc:
            raise MalformedJudgment(str(exc), reply=reply.text) from None
        scores: dict[str, float] = {}
        distributions: dict[str, dict[int, float]] = {}
        for criterion in rubric.criterion_names:
            weighted = score_from_logprobs(reply, parsed, criterion)
            if weighted is None:
                scores[criterion] = float(parsed.scores[criterion])
            else:
                scores[criterion], distributions[criterion] = weighted
        return Judgment(scores=scores, reasoning=parsed.reasoning, distributions=distributions, raw=reply.text)

    def pairwise(self, messages: list[Message]) -> PairwiseJudgment:
        """Say which response is better; see :class:`evalkit.judges.clients.JudgeClient`."""
        reply = self._ask(messages, pairwise_schema())
        try:
            winner, reasoning = parse_pairwise(reply.text)
        except MalformedJudgment as exc:
            raise MalformedJudgment(str(exc), reply=reply.text) from None
        return PairwiseJudgment(winner=winner, reasoning=reasoning, raw=reply.text)

    def _bad_request(self, status: int, message: str) -> None:
        """Turn off an optional feature the server refused, or fail for good."""
        message = redact(message)  # a server may echo the request's headers back
        lowered = message.lower()
        if status in (400, 413) and any(k in lowered for k in ("context length", "too long", "maximum context")):
            raise UnjudgeableItem(f"the prompt does not fit the judge's context: {message[:200]}")
        refused_schema = any(k in lowered for k in ("schema", "response_format", "output_config"))
        if status == 400 and self.structured and refused_schema:
            self.structured = False
            raise TransientJudgeError("the server refused structured output; asking again without it", 0.0)
        raise JudgeError(f"judge {self.spec.label()}: the API answered {status}: {message[:300]}; "
                         "check the model name, base_url and key")

    def close(self) -> None:
        """Nothing to free beyond the SDK client's connections (closed with it)."""


class OpenAIJudge(ChatJudge):
    """A judge on the OpenAI Chat Completions API or any compatible server (vLLM, ...)."""

    def __init__(self, spec: JudgeClientSpec) -> None:
        """Build the SDK client from the spec; the key comes from the environment."""
        super().__init__(spec)
        import openai

        self._openai = openai
        self.logprobs = spec.logprobs
        self.client = openai.OpenAI(api_key=api_key(spec), base_url=spec.base_url, max_retries=0,
                                    timeout=spec.timeout_s)

    def chat(self, messages: list[Message], schema: dict[str, Any] | None) -> ChatReply:
        """Send the conversation; see :class:`ChatJudge`."""
        openai = self._openai
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "judgment", "schema": schema, "strict": True}}
        if self.logprobs:
            extra.update(logprobs=True, top_logprobs=5)
        started = time.perf_counter()
        try:
            response = self.client.chat.completions.create(
                model=self.spec.model, messages=messages,  # type: ignore[arg-type]
                temperature=self.spec.temperature, max_tokens=self.spec.max_tokens, **extra,
            )
            self.usage.add(getattr(response, "usage", None), time.perf_counter() - started)
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise TransientJudgeError(f"{type(exc).__name__}: {exc}") from None
        except openai.APIStatusError as exc:
            if exc.status_code in _TRANSIENT_STATUS or exc.status_code >= 500:
                raise TransientJudgeError(f"HTTP {exc.status_code}", _retry_after(exc.response)) from None
            if exc.status_code == 400 and self.logprobs and "logprob" in str(exc.message).lower():
                self.logprobs = False
                raise TransientJudgeError("the server refused logprobs; asking again without them", 0.0) from None
            self._bad_request(exc.status_code, str(exc.message))
            raise  # unreachable: _bad_request raises
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise TransientJudgeError(f"unreadable reply: {type(exc).__name__}") from None
        choices = getattr(response, "choices", None)
        if not choices or choices[0].message is None:
            raise TransientJudgeError("a reply without choices")
        choice = choices[0]
        tokens = None
        if choice.logprobs is not None and choice.logprobs.content:
            tokens = [
                TokenLogprobs(t.token, {**{a.token: a.logprob for a in (t.top_logprobs or [])}, t.token: t.logprob})
                for t in choice.logprobs.content
            ]
        return ChatReply(text=choice.message.content or "", tokens=tokens)

    def close(self) -> None:
        """Close the SDK client's connections."""
        self.client.close()


class AnthropicJudge(ChatJudge):
    """A judge on the Anthropic Messages API (or a server speaking it, such as vLLM)."""

    def __init__(self, spec: JudgeClientSpec) -> None:
        """Build the SDK client from the spec; the key comes from the environment."""
        super().__init__(spec)
        import anthropic

        self._anthropic = anthropic
        self.client = anthropic.Anthropic(api_key=api_key(spec), base_url=spec.base_url, max_retries=0,
                                          timeout=spec.timeout_s)

    def chat(self, messages: list[Message], schema: dict[str, Any] | None) -> ChatReply:
        """Send the conversation; see :class:`ChatJudge`."""
        anthropic = self._anthropic
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        if system:
            extra["system"] = system
        started = time.perf_counter()
        try:
            response = self.client.messages.create(
                model=self.spec.model, max_tokens=self.spec.max_tokens, messages=turns,  # type: ignore[arg-type]
                **extra,
            )
            self.usage.add(getattr(response, "usage", None), time.perf_counter() - started)
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
            raise TransientJudgeError(f"{type(exc).__name__}: {exc}") from None
        except anthropic.APIStatusError as exc:
            if exc.status_code in _TRANSIENT_STATUS or exc.status_code >= 500:
                raise TransientJudgeError(f"HTTP {exc.status_code}", _retry_after(exc.response)) from None
            self._bad_request(exc.status_code, str(exc.message))
            raise  # unreachable: _bad_request raises
        except (anthropic.APIResponseValidationError, ValueError) as exc:
            raise TransientJudgeError(f"unreadable reply: {type(exc).__name__}") from None
        content = getattr(response, "content", None)
        if not isinstance(content, list):
            raise TransientJudgeError("a reply without content")
        text = "".join(getattr(block, "text", "") for block in content if getattr(block, "type", "") == "text")
        return ChatReply(text=text)

    def close(self) -> None:
        """Close the SDK client's connections."""
        self.client.close()


@register_provider("openai")
def openai_judge(spec: JudgeClientSpec, backends: Mapping[str, Any]) -> OpenAIJudge:
    """Build the ``openai`` judge (the run's backends are not needed)."""
    return OpenAIJudge(spec)


@register_provider("anthropic")
def anthropic_judge(spec: JudgeClientSpec, backends: Mapping[str, Any]) -> AnthropicJudge:
    """Build the ``anthropic`` judge (the run's backends are not needed)."""
    return AnthropicJudge(spec)
