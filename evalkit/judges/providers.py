"""Judge clients: their contract and registry, the HTTP API judges, and the ``local`` judge.

Judges behind an HTTP API: ``anthropic`` (Messages API, :class:`AnthropicJudge`) and ``openai``
(Chat Completions, :class:`OpenAIJudge`). Both use the official SDKs with their own retries off
(``max_retries=0``): retries are counted and bounded in :mod:`evalkit.judges.calibration`. Keys
come from the environment only and live only inside the SDK client; a server at a custom
``base_url`` that needs no key (vLLM on loopback) gets a placeholder.

Where the server offers token logprobs (OpenAI-compatible servers), each criterion's
score is the probability-weighted mean over the score tokens 1..5 at the position
where the judge wrote it, like the local judge; otherwise it is the integer written.
When the API supports structured output, the reply is constrained to the judgment's
JSON schema; a server that rejects the schema or logprobs is asked again without.

Every response received adds its ``usage`` (the tokens the API billed) and its wall time
to the judge's ``usage`` (:class:`evalkit.usage.stage.RequestTally`); the judges stage prices
it (see :mod:`evalkit.usage.stage`).

Also here:

* The judge client contract, the judgments it returns, and the provider registry (:class:`JudgeClient`,
  :class:`Judgment`, :class:`PairwiseJudgment`, :func:`register_provider`, :func:`create_client`).
* The ``local`` judge: an HF model in this process, scoring like G-Eval (:class:`LocalJudge`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.errors import ConfigError, JudgeError
from evalkit.judges.rubric import (
    SCALE,
    MalformedJudgment,
    ParsedJudgment,
    Rubric,
    judgment_schema,
    pairwise_schema,
    parse_pairwise,
    parse_pointwise,
)
from evalkit.judges.section import JudgeClientSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend, in_inference_mode, render_chat
from evalkit.models.options import PLACEHOLDER_KEY, read_api_key, redact
from evalkit.models.sources import resolve_model
from evalkit.prompting import Message
from evalkit.registry import JUDGE_PROVIDERS, UnknownName
from evalkit.usage.stage import RequestTally

# The judge client contract, the judgments it returns, and the provider registry.
#
# A judge client answers two questions for a rendered prompt (chat messages)::
#
#     client.pointwise(messages, rubric) -> Judgment          # a 1..5 score per criterion
#     client.pairwise(messages) -> PairwiseJudgment            # "A", "B" or "tie"
#
# and raises exactly one of three things when it cannot:
#
# * :class:`TransientJudgeError`: 429, 5xx, a timeout, a broken reply body; retried
#   with backoff a bounded number of times;
# * :class:`~evalkit.judges.rubric.MalformedJudgment`: the judge answered, but not with
#   a usable judgment; retried a bounded number of times, then a judge error;
# * :class:`UnjudgeableItem`: this item cannot be judged (its prompt is too long); an
#   error for the item at once, the other items go on;
# * :class:`~evalkit.errors.JudgeError`: nothing will help (a bad key, an unknown
#   model): the run stops with a message saying what to fix.
#
# Retrying, the concurrency limit and the cache live in :mod:`evalkit.judges.calibration`,
# so that every client gets them alike. ``identity`` names the judge for the cache
# (provider, model, endpoint; never a key).

class TransientJudgeError(Exception):
    """A request failed in a way worth retrying (429, 5xx, timeout, garbage reply).

    Attributes:
        retry_after: seconds the server asked to wait, if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnjudgeableItem(Exception):
    """The judge cannot take this item at all (say, its prompt exceeds the context window).

    Retrying would fail alike: the item becomes a judge error at once.
    """


@dataclass(frozen=True)
class Judgment:
    """A pointwise judgment of one prediction.

    Attributes:
        scores: criterion -> score in 1..5 (a probability-weighted mean when the judge
            gave probabilities, else the integer it wrote).
        reasoning: the judge's reasoning.
        distributions: criterion -> {score: probability}, when known.
        raw: the judge's reply as it came (empty when the judge gives no text, as the
            local judge, which reads score probabilities).
    """

    scores: dict[str, float]
    reasoning: str = ""
    distributions: dict[str, dict[int, float]] = field(default_factory=dict)
    raw: str = ""


@dataclass(frozen=True)
class PairwiseJudgment:
    """Which of two responses (A first, B second) the judge prefers.

    Attributes:
        winner: ``A``, ``B`` or ``tie``.
        reasoning: the judge's reasoning.
        raw: the judge's reply as it came (empty when the judge gives no text).
    """

    winner: str
    reasoning: str = ""
    raw: str = ""


class JudgeClient(Protocol):
    """Scores predictions; see the module docstring for the contract."""

    identity: str
    concurrency: int

    def pointwise(self, messages: list[Message], rubric: Rubric) -> Judgment:
        """Score one prediction on every criterion of ``rubric``."""
        ...

    def pairwise(self, messages: list[Message]) -> PairwiseJudgment:
        """Say which of the two responses in the prompt is better."""
        ...

    def close(self) -> None:
        """Free what the client holds (connections, models)."""
        ...


def weighted_score(probabilities: Mapping[int, float]) -> tuple[float, dict[int, float]]:
    """Return the probability-weighted mean score and the distribution renormalised over 1..5.

    Raises:
        ValueError: no probability mass on any score.
    """
    total = sum(p for s, p in probabilities.items() if s in SCALE and p > 0 and math.isfinite(p))
    if total <= 0:
        raise ValueError("no probability on any score token")
    distribution = {s: probabilities.get(s, 0.0) / total for s in SCALE}
    return sum(s * p for s, p in distribution.items()), distribution


ClientFactory = Callable[[JudgeClientSpec, Mapping[str, Any]], JudgeClient]


def register_provider(name: str) -> Callable[[ClientFactory], ClientFactory]:
    """Register a judge client factory under a ``provider:`` name (a decorator).

    Raises:
        DuplicateName: another factory holds ``name``.
    """
    return JUDGE_PROVIDERS.decorator(name)


def create_client(spec: JudgeClientSpec, backends: Mapping[str, Any] | None = None) -> JudgeClient:
    """Build the judge client a spec names.

    Args:
        spec: the judge client settings.
        backends: the run's generation backends; a local judge reuses the ``hf`` one so
            a model shared with a candidate is loaded once.

    Raises:
        ConfigError: unknown provider.
        JudgeError: the client cannot be built (a missing API key, say).
    """
    # The provider modules import their SDK or torch only when the factory builds a client.
    try:
        factory = JUDGE_PROVIDERS.get(spec.provider)
    except UnknownName as exc:
        raise ConfigError(str(exc)) from None
    client: JudgeClient = factory(spec, backends or {})
    return client


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
    # Refuses a key bound for plain http off this machine (see evalkit.models.options).
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
    capped again by :func:`evalkit.judges.calibration.backoff_delay`.
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
        """Score one prediction; see :class:`evalkit.judges.providers.JudgeClient`."""
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
        """Say which response is better; see :class:`evalkit.judges.providers.JudgeClient`."""
        reply = self._ask(messages, pairwise_schema())
        try:
            winner, reasoning = parse_pairwise(reply.text)
        except MalformedJudgment as exc:
            raise MalformedJudgment(str(exc), reply=reply.text) from None
        return PairwiseJudgment(winner=winner, reasoning=reasoning, raw=reply.text)

    def _send(self, sdk: Any, create: Callable[[], Any]) -> Any:
        """Make one SDK request, tally its usage and map the SDK's errors onto the judge's.

        ``sdk`` is the ``openai`` or ``anthropic`` module: both name their errors alike.

        Raises:
            TransientJudgeError: worth another try (network, rate limit, a refused option).
            UnjudgeableItem: the prompt does not fit the judge's context.
            JudgeError: the server refused the request for good.
        """
        started = time.perf_counter()
        try:
            response = create()
            self.usage.add(getattr(response, "usage", None), time.perf_counter() - started)
        except (sdk.APITimeoutError, sdk.APIConnectionError) as exc:
            raise TransientJudgeError(f"{type(exc).__name__}: {exc}") from None
        except sdk.APIStatusError as exc:
            if exc.status_code in _TRANSIENT_STATUS or exc.status_code >= 500:
                raise TransientJudgeError(f"HTTP {exc.status_code}", _retry_after(exc.response)) from None
            self._drop_refused_option(exc.status_code, str(exc.message))
            self._bad_request(exc.status_code, str(exc.message))
            raise  # unreachable: _bad_request raises
        except (sdk.APIResponseValidationError, ValueError) as exc:
            raise TransientJudgeError(f"unreadable reply: {type(exc).__name__}") from None
        return response

    def _drop_refused_option(self, status: int, message: str) -> None:
        """Turn off a provider-specific option the server refused (subclasses override)."""

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
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "judgment", "schema": schema, "strict": True}}
        if self.logprobs:
            extra.update(logprobs=True, top_logprobs=5)
        response = self._send(self._openai, lambda: self.client.chat.completions.create(
            model=self.spec.model, messages=messages,  # type: ignore[arg-type]
            temperature=self.spec.temperature, max_tokens=self.spec.max_tokens, **extra,
        ))
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

    def _drop_refused_option(self, status: int, message: str) -> None:
        """Ask again without logprobs when the server refused them."""
        if status == 400 and self.logprobs and "logprob" in message.lower():
            self.logprobs = False
            raise TransientJudgeError("the server refused logprobs; asking again without them", 0.0) from None

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
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        if system:
            extra["system"] = system
        response = self._send(self._anthropic, lambda: self.client.messages.create(
            model=self.spec.model, max_tokens=self.spec.max_tokens, messages=turns,  # type: ignore[arg-type]
            **extra,
        ))
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


# The ``local`` judge: an HF model in this process, scoring like G-Eval.
#
# Instead of sampling one digit per criterion (noisy for a small judge), the judge's
# answer is written for it, up to each score: after the prompt comes
# ``{"format": `` and the model's next-token probabilities over the score tokens
# ``1``..``5`` give the criterion's distribution; the score is their probability-weighted
# mean. The most likely digit is then written and the next criterion follows
# (``, "accuracy": ``), all on one KV cache, so a criterion costs a few tokens, not a
# prompt. Pairwise verdicts read the probabilities of ``A``, ``B`` and ``tie`` after
# ``{"winner": "``.
#
# Models load through :class:`evalkit.models.hf.HFBackend`; the run's own HF backend is
# reused when there is one, so a judge sharing a base with a candidate loads it once
# (an adapter loaded for a candidate is switched off while judging).

if TYPE_CHECKING:
    import torch


def _single_token(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


class LocalJudge:
    """Scores with an in-process model by probability-weighted score tokens."""

    concurrency = 1  # torch already uses every core; threads would only contend

    def __init__(self, spec: JudgeClientSpec, backend: HFBackend | None = None) -> None:
        """Resolve the judge model; it loads on first use.

        Raises:
            ModelError: the model source does not resolve.
        """
        self.spec = spec
        self._owns_backend = backend is None
        self.backend = backend or HFBackend()
        self.variant = ModelVariant(model=resolve_model(spec.model), dtype=spec.dtype)
        self.identity = f"local:{spec.model}:{self.variant.model.fingerprint[:16]}:{spec.dtype}"
        self._score_tokens: dict[int, list[int]] | None = None
        self._space_in_prefix = True

    def _prepare(self, tokenizer: Any) -> dict[int, list[int]]:
        if self._score_tokens is None:
            spaced = {s: _single_token(tokenizer, f" {s}") for s in SCALE}
            bare = {s: _single_token(tokenizer, str(s)) for s in SCALE}
            # Where " 4" is one token the prefix stops before the space and both forms
            # count; otherwise the space is written and the bare digit follows it.
            self._space_in_prefix = not all(v is not None for v in spaced.values())
            self._score_tokens = {
                s: [t for t in ((bare[s],) if self._space_in_prefix else (spaced[s], bare[s])) if t is not None]
                for s in SCALE
            }
        return self._score_tokens

    def _step(self, model: Any, ids: list[int], cache: Any) -> tuple[torch.Tensor, Any]:
        import torch

        inputs = torch.tensor([ids], device=self.backend.device)
        output = model(input_ids=inputs, past_key_values=cache, use_cache=True)
        return torch.softmax(output.logits[0, -1].float(), dim=-1), output.past_key_values

    @in_inference_mode
    def pointwise(self, messages: list[Message], rubric: Rubric) -> Judgment:
        """Score every criterion by its probability-weighted mean; see the module docstring."""
        with self.backend.active(self.variant) as (model, tokenizer):
            score_tokens = self._prepare(tokenizer)
            gap = " " if self._space_in_prefix else ""
            text = render_chat(tokenizer, messages)
            cache = None
            scores: dict[str, float] = {}
            distributions: dict[str, dict[int, float]] = {}
            masses: list[str] = []
            piece = text
            for index, name in enumerate(rubric.criterion_names):
                piece += ("{" if index == 0 else ", ") + f'"{name}":{gap}'
                probs, cache = self._step(model, tokenizer.encode(piece, add_special_tokens=False), cache)
                raw = {s: float(sum(probs[t] for t in ids)) for s, ids in score_tokens.items()}
                scores[name], distributions[name] = weighted_score(raw)
                masses.append(f"{name} {sum(raw.values()):.2f}")
                best = max(distributions[name], key=lambda s: distributions[name][s])
                piece = str(best)
        summary = "; ".join(
            f"{name}: " + " ".join(f"p{s}={p:.2f}" for s, p in distributions[name].items()) for name in scores
        )
        reasoning = f"probability-weighted score tokens ({summary}); mass on score tokens: {', '.join(masses)}"
        return Judgment(scores=scores, reasoning=reasoning, distributions=distributions)

    @in_inference_mode
    def pairwise(self, messages: list[Message]) -> PairwiseJudgment:
        """Pick the likelier of ``A``, ``B`` and ``tie`` after ``{"winner": "``."""
        with self.backend.active(self.variant) as (model, tokenizer):
            text = render_chat(tokenizer, messages) + '{"winner": "'
            probs, _ = self._step(model, tokenizer.encode(text, add_special_tokens=False), None)
            choice_probs = {
                choice: float(probs[tokenizer.encode(choice, add_special_tokens=False)[0]])
                for choice in ("A", "B", "tie")
            }
        winner = max(choice_probs, key=lambda c: choice_probs[c])
        detail = " ".join(f"p({c})={p:.2f}" for c, p in choice_probs.items())
        return PairwiseJudgment(winner=winner, reasoning=f"most likely verdict: {detail}")

    def close(self) -> None:
        """Free the model when this judge loaded it (not when it borrowed the run's backend)."""
        if self._owns_backend:
            self.backend.close()


@register_provider("local")
def local_judge(spec: JudgeClientSpec, backends: Mapping[str, Any]) -> LocalJudge:
    """Build the ``local`` judge, on the run's ``hf`` backend when it has one (a shared base loads once)."""
    shared = backends.get("hf")
    return LocalJudge(spec, shared if isinstance(shared, HFBackend) else None)
