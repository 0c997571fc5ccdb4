"""The judge client contract, the judgments it returns, and the provider registry.

A judge client answers two questions for a rendered prompt (chat messages)::

    client.pointwise(messages, rubric) -> Judgment          # a 1..5 score per criterion
    client.pairwise(messages) -> PairwiseJudgment            # "A", "B" or "tie"

and raises exactly one of three things when it cannot:

* :class:`TransientJudgeError`: 429, 5xx, a timeout, a broken reply body; retried
  with backoff a bounded number of times;
* :class:`~evalkit.judges.rubric.MalformedJudgment`: the judge answered, but not with
  a usable judgment; retried a bounded number of times, then a judge error;
* :class:`UnjudgeableItem`: this item cannot be judged (its prompt is too long); an
  error for the item at once, the other items go on;
* :class:`~evalkit.errors.JudgeError`: nothing will help (a bad key, an unknown
  model): the run stops with a message saying what to fix.

Retrying, the concurrency limit and the cache live in :mod:`evalkit.judges.calibration`,
so that every client gets them alike. ``identity`` names the judge for the cache
(provider, model, endpoint; never a key).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from evalkit.errors import ConfigError
from evalkit.judges.rubric import SCALE, Rubric
from evalkit.judges.spec import JudgeClientSpec
from evalkit.prompting import Message
from evalkit.registry import JUDGE_PROVIDERS, UnknownName


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
