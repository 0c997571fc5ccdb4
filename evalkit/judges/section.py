"""The suite's ``judges:`` entries and the run's ``judges`` section, with the rules that say what counts.

The run's section holds, per judge entry (keyed by its ``name:``, else the rubric's), what it found.
Shape: ``{key: JudgeEntry}``, written by :mod:`evalkit.judges.stage`; read by the bars
and the verdict (whether scores count and how failed judgments count: below), the
report's judges, review and cost views, and the comparison of two runs. Fields are in
the order the stage writes them; keys written only in one mode or only sometimes
(``pairwise``, ``consistency``, ``usage``, a judge's ``base_url``, a consistency entry's
``first_position_rate`` or ``repeats``/``mean_std``) default to None and are left out of
the JSON form by dumping with ``exclude_unset=True``. Defaults elsewhere let the
hand-written sections of tests and older runs read: readers have always tolerated an
entry with only its ``calibration``.

Also here:

* Whether a judge's scores count: one rule for the bars, the regression verdict and the report
  (:func:`judge_metric_not_counted`, :func:`consistency_not_counted`).
* Failed judgments count: how they are scored, counted, and when they fail a judge's bars
  (:func:`failure_entry`, :func:`failures_exceeded`).
* The suite's ``judges:`` section: which rubric, which judge, which mode (:class:`JudgeSpec`,
  :class:`JudgeClientSpec`).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, Field, field_validator, model_validator

from evalkit.bars.spec import format_value
from evalkit.comparison.result import validate_threshold_text
from evalkit.files.yaml_source import StrictModel
from evalkit.models.options import check_base_url, check_key_env_name, sends_in_clear
from evalkit.models.sources import DEFAULT_MODEL
from evalkit.record.run_facts import ApiUsage
from evalkit.record.sections import SectionModel
from evalkit.registry import JUDGE_PROVIDERS, UnknownName


class JudgeIdentity(SectionModel):
    """Which judge: its provider and model, and the endpoint when the suite named one."""

    provider: str
    model: str
    base_url: str | None = None
    """Only when the suite set one."""


class CriterionAgreement(SectionModel):
    """Judge-human agreement on one criterion (:func:`evalkit.judges.calibration.agreement` computes it)."""

    n: int
    """Examples judged (judge errors left out)."""
    kappa: float | None
    """Quadratic-weighted Cohen's kappa, None when undefined."""
    spearman: float | None
    """Spearman's rho, None when undefined."""
    exact: float | None
    """Share of examples where the rounded judge score equals the human's."""
    within_one: float | None
    """Share where they differ by at most one level."""
    self_consistency: float | None = None
    """Mean std of repeated judgments (None without repeats)."""


class Calibration(SectionModel):
    """The judge measured against human labels.

    Without labels but with ``min_kappa`` set, the entry is ``kappa: {}``, ``calibrated:
    false``, ``n: 0`` (no ``errors``, no ``agreement``).
    """

    kappa: dict[str, float] = Field(default_factory=dict)
    """criterion -> weighted kappa, for the criteria where it is defined."""
    calibrated: bool
    min_kappa: float | None = None
    n: int = 0
    """Labelled examples."""
    errors: int | None = None
    """Examples the judge failed to judge; only when there were labels."""
    agreement: dict[str, CriterionAgreement] | None = None
    """Only when there were labels."""


class CriterionStats(SectionModel):
    """One candidate's scores on one criterion (``preference`` in pairwise mode)."""

    mean: float | None
    std: float | None = None
    n: int | None = None
    n_failed: int = 0
    """Judged items whose judgment failed (scored as a failure, not dropped)."""


class FailureCount(SectionModel):
    """One candidate's failed judgments against the judge's tolerance."""

    n: int
    n_failed: int
    rate: float
    max_failures: float
    exceeded: bool


class PairwiseRates(SectionModel):
    """A candidate's pairwise rates against the baseline (all None, ``n`` 0, when no pair was decided)."""

    win_rate: float | None = None
    tie_rate: float | None = None
    loss_rate: float | None = None
    inconsistent_rate: float | None = None
    consistency: float | None = None
    first_position_rate: float | None = None
    n: int = 0


class TranscriptMessage(SectionModel):
    """One message sent to the judge, its content clipped."""

    role: str
    content: str


class TranscriptTurn(SectionModel):
    """One question to the judge about an item and its reply (:func:`evalkit.judges.stage.transcript`)."""

    label: str
    messages: list[TranscriptMessage]
    reply: str


class Consistency(SectionModel):
    """How far the judge agrees with itself (:mod:`evalkit.judges.calibration`)."""

    kind: Literal["position", "self"]
    rate: dict[str, float | None]
    """criterion (``preference`` for position) -> share of items that agreed; None when none was measured."""
    n: dict[str, int]
    min_consistency: float | None
    consistent: bool | None
    """None when no ``min_consistency`` is set."""
    below: list[str]
    items: dict[str, list[str]]
    """criterion -> ``candidate:item`` ids that disagreed (the first 50)."""
    items_total: dict[str, int]
    first_position_rate: float | None = None
    """Position consistency only."""
    repeats: int | None = None
    """Self-consistency only."""
    mean_std: dict[str, float | None] | None = None
    """Self-consistency only."""


class JudgeTally(SectionModel):
    """Counts over a batch of the judge's tasks (:func:`evalkit.judges.calibration.count_outcome` counts into it)."""

    tasks: int = 0
    errors: int = 0
    request_retries: int = 0
    malformed_retries: int = 0
    cache_hits: int = 0
    error_examples: list[str] = Field(default_factory=list)


class JudgeEntry(SectionModel):
    """One judge entry of the suite: the judge, its calibration and consistency, and its scores."""

    rubric: str | None = None
    judge: JudgeIdentity | None = None
    mode: Literal["pointwise", "pairwise"] = "pointwise"
    calibration: Calibration | None = None
    """None when the judge was not checked against human labels."""
    per_candidate: dict[str, dict[str, CriterionStats]] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    """candidate -> items whose judgment failed."""
    failures: dict[str, FailureCount] = Field(default_factory=dict)
    pairwise: dict[str, PairwiseRates] | None = None
    """Pairwise mode only."""
    transcripts: dict[str, dict[str, list[TranscriptTurn]]] = Field(default_factory=dict)
    """candidate -> item id -> every question asked about it."""
    consistency: Consistency | None = None
    """Pairwise mode always; pointwise with ``repeats`` > 1."""
    tally: JudgeTally | None = None
    usage: ApiUsage | None = None
    """API judges only: requests, tokens, latency and money."""


JudgesSection: TypeAlias = dict[str, JudgeEntry]
"""judge entry key -> what it found."""


# Whether a judge's scores count: one rule for the bars, the regression verdict and the report.
#
# A judge whose agreement with the human labels is below ``min_kappa`` (uncalibrated), or
# whose self- or position-consistency is below ``min_consistency``, produces scores that
# decide nothing: a bar on them is *not counted*, and neither a regression nor an
# undecided comparison on them moves a run's verdict. The scores are still shown.

def consistency_not_counted(consistency: Consistency | None, criterion: str) -> str | None:
    """Return why bars on a judge criterion do not count (below ``min_consistency``), or None.

    Args:
        consistency: the judge entry's consistency (None: not measured).
        criterion: the criterion (``preference`` for pairwise).
    """
    if consistency is None or consistency.min_consistency is None or criterion not in consistency.below:
        return None
    rate = consistency.rate.get(criterion) or 0.0
    what = "position consistency (both orders agree)" if consistency.kind == "position" else "self-consistency"
    return (f"its {what} on '{criterion}' is {rate:.2f} < min_consistency "
            f"{consistency.min_consistency:.2f}; the bar is not counted until the judge agrees with itself")


def judge_metric_not_counted(judges: JudgesSection, metric: str) -> str | None:
    """Return why a judge metric (``judge.<rubric>.<criterion>``) does not count, or None when it counts.

    Args:
        judges: the run's ``judges`` section, typed (:meth:`evalkit.record.results.RunResult.section`).
        metric: any metric name; metrics that are not a judge's always count.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key, criterion = parts[1], parts[2]
    entry = judges.get(key)
    if entry is None:
        return None
    if (inconsistent := consistency_not_counted(entry.consistency, criterion)) is not None:
        return f"judge '{key}': {inconsistent}"
    calibration = entry.calibration
    if calibration is None or calibration.calibrated:
        return None
    kappa = calibration.kappa.get(criterion)
    min_kappa = calibration.min_kappa
    found = f"kappa {format_value(kappa)} for '{criterion}'" if kappa is not None else "no agreement figure"
    wanted = f" < min_kappa {format_value(min_kappa)}" if min_kappa is not None else ""
    return (
        f"judge '{key}' is not calibrated against human labels ({found}{wanted}); "
        "the bar is not counted until the judge agrees with the labels"
    )


# Failed judgments count: how they are scored, counted, and when they fail a judge's bars.
#
# A judgment *fails* when the judge could not be asked (transport failure after the
# bounded retries: 429, 5xx, timeouts), or answered with nothing usable after the parse
# retries (malformed JSON, an off-scale score, a missing criterion), or could not take
# the item at all (its prompt too long). Such an item is never dropped:
#
# * it is **scored as a failure**: the criterion's minimum (1 on the 1..5 scale) in
#   pointwise mode, a loss (preference 0) in pairwise mode, with the reason
#   ``judgment failed: ...``. So it enters the judge's means, its bars, its paired
#   comparison with the baseline and the report's lowest items: an output that breaks
#   the judge cannot escape the judge's gate by breaking it;
# * it is **counted**: ``run.sections["judges"][name]["failures"][candidate]`` holds
#   ``n``, ``n_failed``, ``rate``, ``max_failures`` and ``exceeded``, and each
#   criterion's statistics in ``per_candidate`` carry ``n_failed``;
# * beyond the judge's tolerance (``max_failures``, default 5% of the judged items) a
#   bar on that judge's metrics **fails**, whatever its value: the numbers are then
#   more the judge's outage than the candidate's quality. A bar that compares with the
#   baseline fails when either side exceeds it.
#
# Light to import (the section's schema, no judge clients): :mod:`evalkit.bars.evaluate` reads it.

DEFAULT_MAX_FAILURES = 0.05
FAILED_REASON = "judgment failed"


def failed_reason(error: str) -> str:
    """Return the reason recorded on a score given for a failed judgment."""
    return f"{FAILED_REASON} (scored as a failure): {error or 'no usable judgment'}"


def failure_entry(n: int, n_failed: int, max_failures: float) -> dict[str, Any]:
    """Return one candidate's failure counts for the judge section."""
    rate = n_failed / n if n else 0.0
    return FailureCount(n=n, n_failed=n_failed, rate=rate, max_failures=max_failures,
                        exceeded=rate > max_failures + 1e-12).model_dump(mode="json")


def failures_exceeded(judges: JudgesSection, metric: str, candidates: list[str]) -> str | None:
    """Return why a bar on ``metric`` fails for too many failed judgments, or None.

    Args:
        judges: the run's ``judges`` section, typed.
        metric: the bar's metric; only ``judge.<name>.<criterion>`` metrics are affected.
        candidates: the candidate and, for a bar that compares, the baseline.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key = parts[1]
    entry = judges.get(key)
    failures = entry.failures if entry is not None else {}
    for name in candidates:
        count = failures.get(name)
        if count is not None and count.exceeded:
            return (f"judge '{key}': {count.n_failed} of {count.n} judgments of '{name}' failed "
                    f"({count.rate:.0%} > max_failures {count.max_failures:.0%}); the bar "
                    "fails until the judge answers (see the judge's error examples)")
    return None


# The suite's ``judges:`` section: which rubric, which judge, which mode.
#
# Example::
#
#     judges:
#       - rubric: ../rubrics/classifier_quality.yaml
#         judge: {provider: local, model: smollm2-135m-instruct}
#         min_kappa: 0.4
#       - rubric: ../rubrics/support_reply_tone.yaml
#         judge: {provider: openai, model: gpt-4o, base_url: http://127.0.0.1:8000/v1}
#         mode: pairwise
#
# API keys are read from environment variables only (``api_key_env``); a suite file
# never holds one, so none reaches a run's files.

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
