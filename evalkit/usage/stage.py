"""Cost and latency per candidate: tokens, wall time, tokens/s, time to first token, money.

Backends that can count report one :class:`GenerationUsage` per conversation of their
last ``generate`` call in ``backend.last_usage``. The HF backend: prompt tokens are the
tokenizer's count of the exact prompt, completion tokens are the tokens generated before
the end-of-sequence token, and the time to first token is taken when the first new token
of the batch exists. The vLLM backend counts the same way from vLLM's outputs (see
:mod:`evalkit.models.vllm`; its time to first token is vLLM's own request metric).
The ``openai_server`` backend reports the server's ``usage`` per response and each
request's wall time (see :func:`reported_tokens`). The runner meters every candidate with
:class:`UsageMeter` and stores the summary in ``run.sections["usage"][candidate]``.

API judges (``anthropic``, ``openai``) add each response's usage to a
:class:`RequestTally`; the judges stage prices it and stores the summary in the judge's
own entry, ``run.sections["judges"][name]["usage"]`` (so ``sections["usage"]`` holds
candidates only). A suite prices a judge by ``judge:<name>`` or by a glob over its model.

Latency of an item is measured per request where the backend can (vLLM's request
metrics: time to first token plus the request's decoding time; each HTTP request of
``openai_server``), labelled ``latency_source: per_request``. A batched backend that
cannot time a request (HF ``generate`` over a padded batch) gives each item its batch's
wall time divided by the batch's items, labelled ``batch_share``; the summary's
``latency_source`` says which (``mixed``: both). Tokens/s is over whole batches: the
tokens the batches decoded (HF: rows x steps, a row that ended early included) per
second of their wall time, never an item's tokens over its batch's time. Items served
from the generation cache were not generated in this run and are left out of every
figure (``measured_items`` says how many were).

Money comes from a price table: :data:`DEFAULT_PRICES` (API list prices as published;
check them), overridden by the suite's ``prices:`` (keys: a candidate name, or a glob
over the model source). A price is per million prompt and completion tokens, or per
hour of generation wall time (a local machine or a rented GPU), or both.

Bars name these figures directly: ``latency_p95 <= 2s``, ``cost_per_1k_items <= 0.50``
(see :data:`USAGE_METRICS`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.bars.spec import OPERATORS, BarResult, BarSpec
from evalkit.record.run_facts import ApiUsage, CandidateUsage, UsageSection
from evalkit.record.run_facts import GenerationUsage as GenerationUsage
from evalkit.usage.spec import DEFAULT_PRICES as DEFAULT_PRICES
from evalkit.usage.spec import USAGE_METRICS as USAGE_METRICS
from evalkit.usage.spec import PriceSpec as PriceSpec
from evalkit.usage.spec import find_price as find_price

if TYPE_CHECKING:
    from evalkit.record.results import RunResult



def reported_tokens(usage: Any) -> tuple[int, int] | None:
    """Return (prompt, completion) tokens from an API response's ``usage``, None when it has none.

    Reads the OpenAI shape (``prompt_tokens`` / ``completion_tokens``) and the Anthropic
    one (``input_tokens`` / ``output_tokens``); a server that sends no usage, or only
    part of it, counts as none (never as zero).
    """
    if usage is None:
        return None
    for prompt_field, completion_field in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        prompt, completion = getattr(usage, prompt_field, None), getattr(usage, completion_field, None)
        if isinstance(prompt, int) and isinstance(completion, int):
            return prompt, completion
    return None


class BatchTimer:
    """Times one batched ``generate`` call, counts each row's generated tokens and reports rows as they end.

    Pass :meth:`stopping_criteria` to ``model.generate``: it never stops generation; at
    each decoding step it records when the first new token exists and tells
    ``on_rows_done`` how many more rows have emitted their end-of-sequence token, so a
    run made of one batch shows items finishing instead of sitting at ``0/N`` until the
    whole batch returns. Call :meth:`finish` with the new tokens: the rows that ran to
    ``max_new_tokens`` are reported then.

    Args:
        on_rows_done: called with the number of rows newly finished (the runner's progress).
    """

    def __init__(self, on_rows_done: Callable[[int], None] | None = None) -> None:
        """Start the clock."""
        self.started = time.perf_counter()
        self.first_token_seconds: float | None = None
        self.seconds = 0.0
        self.completion_tokens: list[int] = []
        self.steps = 0
        self._on_rows_done = on_rows_done
        self._rows_reported = 0

    def stopping_criteria(self, prompt_length: int = 0, eos_token_id: int | Sequence[int] | None = None) -> Any:
        """Return a transformers ``StoppingCriteriaList`` that notes the first token and rows that ended.

        Args:
            prompt_length: the padded prompt's length (new tokens start there).
            eos_token_id: the end-of-sequence token(s); None reports rows only at :meth:`finish`.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        timer = self
        stops = torch.tensor(sorted(_stop_ids(eos_token_id)), dtype=torch.long)

        class _Observer(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
                if timer.first_token_seconds is None:
                    timer.first_token_seconds = time.perf_counter() - timer.started
                if timer._on_rows_done is not None and len(stops):
                    new = input_ids[:, prompt_length:]
                    ended = int(torch.isin(new, stops.to(new.device)).any(dim=1).sum().item())
                    timer._report(ended)
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([_Observer()])

    def _report(self, rows_done: int) -> None:
        if self._on_rows_done is not None and rows_done > self._rows_reported:
            self._on_rows_done(rows_done - self._rows_reported)
            self._rows_reported = rows_done

    def finish(self, new_tokens: Any, eos_token_id: int | Sequence[int] | None) -> None:
        """Stop the clock, count per row the tokens before the first end-of-sequence token, report every row."""
        self.seconds = time.perf_counter() - self.started
        stops = _stop_ids(eos_token_id)
        self.completion_tokens = []
        self.steps = int(new_tokens.shape[1])  # decoding steps of the batch: every row was computed at each
        for row in new_tokens.tolist():
            count = next((i for i, token in enumerate(row) if token in stops), len(row))
            self.completion_tokens.append(count)
        self._report(len(self.completion_tokens))


def _stop_ids(eos_token_id: int | Sequence[int] | None) -> set[int]:
    return {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Return the q-quantile with linear interpolation (numpy's default), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class UsageMeter:
    """Collects one candidate's per-item usage as its chunks are generated.

    Attributes:
        per_item: item id -> its usage (items generated in this run only).
        seconds: total generation wall time of those items.
    """

    per_item: dict[str, GenerationUsage] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, item_ids: Sequence[str], backend: Any, seconds: float) -> None:
        """Record one generated chunk: the backend's ``last_usage`` if it has one, else the chunk's time."""
        reported = getattr(backend, "last_usage", None)
        entries: list[Any] = reported if isinstance(reported, list) and len(reported) == len(item_ids) else []
        self.seconds += seconds
        # A backend that reports nothing: each item gets its share of the chunk's time, said so.
        share = GenerationUsage(None, None, seconds / len(item_ids), latency_source="batch_share") if item_ids else None
        for index, item_id in enumerate(item_ids):
            usage = entries[index] if entries else None
            self.per_item[item_id] = usage if isinstance(usage, GenerationUsage) else share  # type: ignore[assignment]

    def summary(self, n_items: int, price: tuple[str, PriceSpec] | None) -> CandidateUsage:
        """Return the usage summary of the candidate (see the module docstring).

        Typed, not its JSON: the run keeps it through ``set_section_entry``, which writes
        its JSON once (a million items' usage is not validated again).
        """
        usages = list(self.per_item.values())
        prompt = [u.prompt_tokens for u in usages if u.prompt_tokens is not None]
        completion = [u.completion_tokens for u in usages if u.completion_tokens is not None]
        latencies = [u.seconds for u in usages]
        first = [u.first_token_seconds for u in usages if u.first_token_seconds is not None]
        counted = bool(usages) and len(prompt) == len(usages) and len(completion) == len(usages)
        decoded = sum(u.decoded_tokens if u.decoded_tokens is not None else (u.completion_tokens or 0)
                      for u in usages)
        sources = {u.latency_source for u in usages}
        source = None if not usages or None in sources else (sources.pop() if len(sources) == 1 else "mixed")
        cost = None
        if price is not None and usages:
            cost = priced(price[1], self.seconds, (sum(prompt), sum(completion)) if counted else None)
        priced_at: dict[str, Any] = {} if price is None or cost is None else {
            "price": price[0], "currency": price[1].currency, "cost": cost,
            "cost_per_1k_items": cost / len(usages) * 1000.0}
        return CandidateUsage(
            items=n_items,
            measured_items=len(usages),
            prompt_tokens=sum(prompt) if counted else None,
            completion_tokens=sum(completion) if counted else None,
            prompt_tokens_per_item=sum(prompt) / len(prompt) if counted else None,
            completion_tokens_per_item=sum(completion) / len(completion) if counted else None,
            seconds=round(self.seconds, 4),
            tokens_per_second=decoded / self.seconds if counted and self.seconds > 0 else None,
            latency_p50=_quantile(latencies, 0.5),
            latency_p95=_quantile(latencies, 0.95),
            latency_source=source,
            ttft_p50=_quantile(first, 0.5),
            ttft_p95=_quantile(first, 0.95),
            **priced_at,
            per_item=dict(self.per_item),
        )


def priced(spec: PriceSpec, seconds: float, tokens: tuple[int, int] | None) -> float | None:
    """Return the money for ``seconds`` of wall time and (prompt, completion) ``tokens``.

    None when the price is per token and the tokens are not known (never a made-up zero).
    """
    if tokens is None and (spec.input_per_million or spec.output_per_million):
        return None
    cost = seconds / 3600.0 * spec.per_hour
    if tokens is not None:
        cost += (tokens[0] * spec.input_per_million + tokens[1] * spec.output_per_million) / 1e6
    return cost


@dataclass
class RequestTally:
    """The tokens and time an API client spent over its requests (an API judge's); thread-safe.

    Attributes:
        requests: responses received (each one billed, a malformed judgment too).
        unreported: responses that carried no usage.
        prompt_tokens: prompt tokens the server reported, summed.
        completion_tokens: completion tokens the server reported, summed.
        latencies: each request's wall time.
    """

    requests: int = 0
    unreported: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, usage: Any, seconds: float) -> None:
        """Count one response: its ``usage`` object (OpenAI or Anthropic shape, or None) and its wall time."""
        tokens = reported_tokens(usage)
        with self._lock:
            self.requests += 1
            self.latencies.append(seconds)
            if tokens is None:
                self.unreported += 1
            else:
                self.prompt_tokens += tokens[0]
                self.completion_tokens += tokens[1]

    def summary(self, price: tuple[str, PriceSpec] | None, seconds: float) -> dict[str, Any]:
        """Return the JSON-ready usage of the client (see the module docstring).

        Args:
            price: the price that applies (from :func:`find_price`), or None.
            seconds: the wall time the client was in use (what a per-hour price bills).
        """
        counted = self.requests > 0 and self.unreported == 0
        cost = None
        if price is not None and self.requests:
            cost = priced(price[1], seconds, (self.prompt_tokens, self.completion_tokens) if counted else None)
        priced_at: dict[str, Any] = {} if price is None or cost is None else {
            "price": price[0], "currency": price[1].currency, "cost": cost,
            "cost_per_1k_requests": cost / self.requests * 1000.0}
        return ApiUsage(
            requests=self.requests, unreported=self.unreported,
            prompt_tokens=self.prompt_tokens if counted else None,
            completion_tokens=self.completion_tokens if counted else None,
            seconds=round(seconds, 4),
            latency_p50=_quantile(self.latencies, 0.5), latency_p95=_quantile(self.latencies, 0.95),
            **priced_at,
        ).model_dump(mode="json")


def usage_bar(bar: BarSpec, run: RunResult) -> BarResult:
    """Check a bar on a usage figure (``latency_p95 <= 2s``) against the run's ``usage`` section."""
    assert bar.metric is not None and bar.op is not None and bar.value is not None
    section: UsageSection = run.section("usage") or {}
    entry = section.get(bar.candidate)
    if entry is None:
        return BarResult.of(bar, "failed", None, f"no usage was measured for '{bar.candidate}' in this run")
    value = getattr(entry, bar.metric, None)
    if value is None:
        why = ("every item came from the generation cache; rerun with --no-cache" if not entry.measured_items
               else "no price applies; add one under `prices:` in the suite" if bar.metric.startswith("cost")
               else "the backend does not report it")
        return BarResult.of(bar, "failed", None, f"{bar.metric} was not measured for '{bar.candidate}': {why}")
    met = OPERATORS[bar.op](float(value), bar.value)
    unit = f" {entry.currency}" if bar.metric.startswith("cost") else \
        " s" if bar.metric.startswith(("latency", "ttft")) else ""
    found = f"{bar.metric} = {float(value):.4g}{unit}, {'meets' if met else 'needs'} {bar.op} {bar.value:g}"
    return BarResult.of(bar, "passed" if met else "failed", float(value), found, n_items=entry.measured_items)
