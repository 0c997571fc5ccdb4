"""One timed vLLM engine call: completions decoded as the HF backend decodes them, and their usage.

What each :class:`~evalkit.usage.stage.GenerationUsage` holds, and how it agrees with the HF backend:

- ``prompt_tokens``: ``len(RequestOutput.prompt_token_ids)``, the ids evalkit tokenized
  itself exactly as the HF backend does (so the counts are the tokenizer's own).
- ``completion_tokens``: ``len(CompletionOutput.token_ids)`` less the end-of-sequence
  token vLLM keeps at the end of a sequence that ends on it; the HF backend counts the
  tokens before the first end-of-sequence token, and the two agree.
- ``seconds``: the request's own latency from vLLM's request metrics: its time to first
  token plus the time from its first to its last token (``last_token_ts -
  first_token_ts``, engine-core monotonic stamps), labelled ``per_request``; without those
  metrics, the engine call's wall time divided by its requests, labelled ``batch_share``.
- ``first_token_seconds``: ``RequestOutput.metrics.first_token_latency`` (vLLM 0.32's
  ``RequestStateStats``: seconds from the request's arrival in the engine to its first
  token). vLLM fills ``metrics`` only when the engine keeps statistics
  (``disable_log_stats=False``, which evalkit's engine sets; ``vllm.LLM`` turns them off by
  default); without them, or in a vLLM that gives no such field, it is None.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from evalkit.usage.stage import GenerationUsage


def completion_token_count(completion: Any, stop_token_ids: set[int]) -> int:
    """Return a ``CompletionOutput``'s generated tokens, not counting a final end-of-sequence token.

    vLLM stops at the first end token, so one can only be last; it is left out whatever
    the finish reason, as HF counts only the tokens before it.
    """
    ids = list(completion.token_ids)
    if ids and ids[-1] in stop_token_ids:
        return len(ids) - 1
    return len(ids)


def first_token_seconds(output: Any) -> float | None:
    """Return the request's time to first token from vLLM's metrics, or None when it kept none."""
    latency = getattr(getattr(output, "metrics", None), "first_token_latency", None)
    return float(latency) if isinstance(latency, int | float) and latency > 0 else None


def request_seconds(output: Any) -> float | None:
    """Return the request's own latency from vLLM's metrics (first token, then decoding), or None."""
    first = first_token_seconds(output)
    metrics = getattr(output, "metrics", None)
    started, ended = getattr(metrics, "first_token_ts", None), getattr(metrics, "last_token_ts", None)
    if first is None or not isinstance(started, int | float) or not isinstance(ended, int | float):
        return None
    if started <= 0 or ended < started:
        return None
    return first + (ended - started)


def request_usage(output: Any, seconds: float, stop_token_ids: set[int], batch: int = 1) -> GenerationUsage:
    """Return the usage of one ``RequestOutput`` of an engine call of ``batch`` requests that took ``seconds``."""
    own = request_seconds(output)
    return GenerationUsage(
        prompt_tokens=len(output.prompt_token_ids),
        completion_tokens=completion_token_count(output.outputs[0], stop_token_ids),
        seconds=own if own is not None else seconds / max(1, batch),
        first_token_seconds=first_token_seconds(output),
        latency_source="per_request" if own is not None else "batch_share",
    )


def generate_and_count(
    llm: Any, tokenizer: Any, prompts: Sequence[dict[str, list[int]]], params: Sequence[Any],
    lora_requests: Sequence[Any],
) -> tuple[list[str], list[GenerationUsage]]:
    """Run one ``llm.generate`` call; return each prompt's completion text and its usage.

    Args:
        llm: the ``vllm.LLM`` engine.
        tokenizer: the HF tokenizer of the engine's base (decodes, names the end token).
        prompts: ``{"prompt_token_ids": [...]}`` per request.
        params: one ``SamplingParams`` per request.
        lora_requests: one ``LoRARequest`` (or None) per request.
    """
    started = time.perf_counter()
    outputs = llm.generate(list(prompts), list(params), use_tqdm=False, lora_request=list(lora_requests))
    seconds = time.perf_counter() - started
    # Decoded here as the HF backend decodes: vLLM's incremental detokenizer holds
    # back a trailing partial UTF-8 character, which would read as a disagreement.
    texts = [tokenizer.decode(list(output.outputs[0].token_ids), skip_special_tokens=True).strip()
             for output in outputs]
    stops = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    return texts, [request_usage(output, seconds, stops, len(outputs)) for output in outputs]
