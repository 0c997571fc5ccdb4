"""The suite's ``judges:`` section: which rubric, which judge, which mode.

Example::

    judges:
      - rubric: ../rubrics/classifier_quality.yaml
        judge: {provider: local, model: smollm2-135m-instruct}
        min_kappa: 0.4
      - rubric: ../rubrics/support_reply_tone.yaml
        judge: {provider: openai, model: gpt-4o, base_url: http://127.0.0.1:8000/v1}
        mode: pairwise

API keys are read from environment variables only (``api_key_env``); a suite file
never holds one, so none reaches a run's files.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from evalkit.comparison.thresholds import validate_threshold_text
from evalkit.files.yaml_source import StrictModel
from evalkit.models.options import check_base_url, check_key_env_name, sends_in_clear
from evalkit.models.sources import DEFAULT_MODEL
from evalkit.registry import JUDGE_PROVIDERS, UnknownName


def _known_provider(name: str) -> str:
    if name not in JUDGE_PROVIDERS:
        raise ValueError(str(UnknownName("judge provider", name, JUDGE_PROVIDERS.names())))
    return name


def _provider_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = JUDGE_PROVIDERS.names()


Provider = Annotated[str, AfterValidator(_known_provider), Field(json_schema_extra=_provider_enum)]
"""A name in :data:`evalkit.registry.JUDGE_PROVIDERS` (``anthropic``, ``local``, ``openai``)."""

DEFAULT_KEY_ENV: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


class JudgeClientSpec(StrictModel):
    """The judge model and how to call it."""

    provider: Provider
    """``anthropic`` (Messages API), ``openai`` (Chat Completions, any compatible server) or
    ``local`` (an HF model in this process)."""
    model: str = ""
    """Model name at the API, or a model source for ``local`` (default the embedded SmolLM2)."""
    base_url: str | None = None
    """API endpoint, e.g. a vLLM server ``http://127.0.0.1:8000/v1``; default the provider's."""
    api_key_env: str | None = None
    """Environment variable holding the API key; default ANTHROPIC_API_KEY / OPENAI_API_KEY."""
    max_tokens: int = Field(default=400, ge=16, le=8192)
    """Upper bound on the judge's reply length."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature for ``openai`` (Anthropic's current models fix their own)."""
    structured_output: bool = True
    """Ask the API to constrain the reply to the judgment's JSON schema."""
    logprobs: bool = True
    """``openai``: request token logprobs and weight scores by them when the server offers them."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """API calls in flight at once."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Per-request timeout; a timeout is retried like a 429 or a 5xx."""
    max_retries: int = Field(default=4, ge=0, le=20)
    """Retries of a request that failed with 429, 5xx, a timeout or a broken reply."""
    parse_retries: int = Field(default=2, ge=0, le=10)
    """Retries of a judgment that was malformed or off the scale, before it counts as an error."""
    backoff_s: float = Field(default=1.0, ge=0)
    """First retry delay; doubled each retry (with jitter), capped at 30 s."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """``local``: weights dtype (auto: float32 on a CPU, bfloat16 on a GPU)."""

    @field_validator("api_key_env")
    @classmethod
    def _key_variable(cls, value: str | None) -> str | None:
        # A shared suite must not pick any variable (a cloud secret, a token) to send away.
        return check_key_env_name(value) if value is not None else None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_base_url(value) if value is not None else None

    @model_validator(mode="after")
    def _provider_rules(self) -> JudgeClientSpec:
        if self.provider == "local":
            if self.base_url is not None:
                raise ValueError("base_url applies to anthropic/openai judges, not local; remove it")
            if not self.model:
                self.model = DEFAULT_MODEL
        elif not self.model:
            raise ValueError(f"a {self.provider} judge needs 'model' (the model name at the API)")
        key_env = self.key_env
        if self.base_url and key_env and os.environ.get(key_env) and sends_in_clear(self.base_url):
            # Checked again when the client is built; here it fails the suite at load.
            raise ValueError(f"base_url {self.base_url} is plain http to another host: the key in {key_env} "
                             "would cross the network unencrypted; use https:// (or a loopback host)")
        return self

    @property
    def key_env(self) -> str | None:
        """The environment variable the API key is read from (None for local)."""
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)

    def label(self) -> str:
        """Return ``provider:model`` for tables and messages."""
        return f"{self.provider}:{self.model}"


class JudgeSpec(StrictModel):
    """One judge run over the suite's predictions."""

    rubric: str
    """The rubric file, relative to the suite file."""
    name: str | None = None
    """Results key and metric prefix (``judge.<name>.<criterion>``); default the rubric's name.
    Set it to judge with one rubric twice (pointwise and pairwise, or two judges)."""
    judge: JudgeClientSpec = Field(default_factory=lambda: JudgeClientSpec(provider="local"))
    """The judge client; default the local embedded SmolLM2."""
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    """``pointwise`` scores each criterion 1..5; ``pairwise`` compares each candidate with the
    baseline on the same item, in both orders."""
    labels: str | None = None
    """Human-labelled calibration set (JSONL); default the rubric's ``labels``."""
    min_kappa: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Minimum weighted kappa per criterion against the labels before judge bars count."""
    max_drop: str | None = None
    """Regression threshold for this judge's metrics (``3%`` or ``0.2pt``)."""
    limit: int | None = Field(default=None, ge=1)
    """Judge only the first N items of each candidate (keeps a local judge's cost down)."""
    max_failures: float = Field(default=0.05, ge=0.0, le=1.0)
    """Tolerated share of failed judgments per candidate (``5%`` or 0.05); beyond it every bar
    on this judge's metrics fails. Failed judgments are scored as failures either way."""
    repeats: int = Field(default=1, ge=1, le=16)
    """Pointwise: judge each output this many times (criteria order rotated each time) and
    keep the median; the agreement between repeats is reported as self-consistency."""
    min_consistency: float | None = Field(default=None, ge=0.0, le=1.0)
    """Minimum position consistency (pairwise: both orders agree) or self-consistency
    (pointwise with ``repeats`` > 1) per criterion before judge bars count."""

    @model_validator(mode="after")
    def _repeats_are_pointwise(self) -> JudgeSpec:
        if self.mode == "pairwise" and self.repeats > 1:
            raise ValueError("repeats applies to pointwise judging; pairwise already judges both orders "
                             "(its position consistency is the audit); remove repeats")
        return self

    @field_validator("max_failures", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"'{value}' is not a share: write 5% or 0.05") from None
        return value

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError("use a letter, then letters, digits or '_'")
        return value

    @field_validator("max_drop", mode="before")
    @classmethod
    def _threshold(cls, value: object) -> object:
        if value is None:
            return None
        return validate_threshold_text(str(value))
