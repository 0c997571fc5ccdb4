"""vLLM's usage: token counts that are the tokenizer's own and agree with the HF backend's, TTFT."""

from __future__ import annotations

import pytest
from vllm_fixtures import shared_hf_backend, shared_vllm_backend

from evalkit.models.backend import ModelVariant
from evalkit.models.sources import resolve_model
from evalkit.models.vllm import completion_token_count, request_usage
from evalkit.suite.config import GenerationConfig

EOS = 2
CONVERSATIONS = [
    [{"role": "user", "content": "Say hi."}],
    [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Where is my refund?"}],
    [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}],
    [{"role": "user", "content": "Classify this customer message: my card was charged twice"}],
]


def _output(token_ids: list[int], finish_reason: str | None, metrics: object = None) -> object:
    """A real vLLM RequestOutput, as the engine returns it."""
    from vllm.outputs import CompletionOutput, RequestOutput

    completion = CompletionOutput(index=0, text="", token_ids=token_ids, cumulative_logprob=None, logprobs=None,
                                  finish_reason=finish_reason)
    return RequestOutput("r0", None, [1, 2, 3, 4, 5], None, [completion], True, metrics=metrics)  # type: ignore[arg-type]


@pytest.mark.parametrize(("token_ids", "finish_reason", "expected"), [
    ([10, 11, EOS], "stop", 2),      # stopped on the end token: vLLM keeps it, HF does not count it
    ([10, 11, 12], "length", 3),     # ran out of budget
    ([10, EOS], "length", 1),        # the end token as the last budgeted token: HF stops counting there too
    ([], "stop", 0),
])
def test_completion_count_leaves_out_the_end_token_vllm_stopped_on(
        token_ids: list[int], finish_reason: str, expected: int) -> None:
    completion = _output(token_ids, finish_reason).outputs[0]  # type: ignore[attr-defined]
    assert completion_token_count(completion, {EOS}) == expected


def test_request_usage_reads_prompt_ids_and_first_token_latency() -> None:
    from vllm.v1.metrics.stats import RequestStateStats

    with_stats = request_usage(_output([7, EOS], "stop", RequestStateStats(first_token_latency=0.25)), 1.5, {EOS})
    assert (with_stats.prompt_tokens, with_stats.completion_tokens, with_stats.seconds) == (5, 1, 1.5)
    assert with_stats.first_token_seconds == 0.25
    # An engine that keeps no statistics gives no metrics: no time to first token, never a made-up one.
    assert request_usage(_output([7], "length"), 1.5, {EOS}).first_token_seconds is None


def test_request_latency_is_the_requests_own_and_a_batch_share_only_without_metrics() -> None:
    from vllm.v1.metrics.stats import RequestStateStats

    stats = RequestStateStats(first_token_latency=0.25, first_token_ts=100.0, last_token_ts=100.5)
    own = request_usage(_output([7, 8, EOS], "stop", stats), 3.0, {EOS}, batch=4)
    assert (own.seconds, own.latency_source) == (0.75, "per_request")  # 0.25 to the first token, 0.5 after
    shared = request_usage(_output([7], "length"), 3.0, {EOS}, batch=4)
    assert (shared.seconds, shared.latency_source) == (0.75, "batch_share")  # the call's 3 s over its 4 requests


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_token_counts_are_the_tokenizers_own_and_agree_with_hf() -> None:
    vllm_backend, hf = shared_vllm_backend(), shared_hf_backend()
    variant = ModelVariant(resolve_model("smollm2-135m-instruct"))
    settings = GenerationConfig(max_new_tokens=24)
    texts = vllm_backend.generate(variant, CONVERSATIONS, settings)
    usage = vllm_backend.last_usage
    hf_texts = hf.generate(variant, CONVERSATIONS, settings)
    hf_usage = hf.last_usage
    tokenizer = vllm_backend.tokenizer(variant)
    assert len(usage) == len(CONVERSATIONS)
    for conversation, used in zip(CONVERSATIONS, usage, strict=True):
        prompt = tokenizer(vllm_backend.render_prompt(variant, conversation), add_special_tokens=False)["input_ids"]
        assert used.prompt_tokens == len(prompt)
        assert used.seconds > 0
        assert used.first_token_seconds is not None and 0 < used.first_token_seconds <= used.seconds
    assert any(used.completion_tokens == settings.max_new_tokens for used in usage), "one runs out of budget"
    # Each request's own latency, from vLLM's metrics: they differ item to item, never the
    # engine call's time copied to every item.
    assert all(used.latency_source == "per_request" for used in usage)
    assert len({round(used.seconds, 6) for used in usage}) > 1, [used.seconds for used in usage]
    # (Under continuous batching a request's latency is not ordered by its own length alone.)
    # The batched HF backend cannot time a row: its figure is the batch's share, and says so.
    assert all(used is not None and used.latency_source == "batch_share" for used in hf_usage)
    assert any(used.completion_tokens < settings.max_new_tokens for used in usage), "one stops on its own"
    agreeing = [n for n, (a, b) in enumerate(zip(texts, hf_texts, strict=True)) if a == b]
    # float32 on both sides: a near-tie may flip a token, rarely; where the text agrees, so must the count.
    assert len(agreeing) >= len(CONVERSATIONS) - 1, (texts, hf_texts)
    for n in agreeing:
        hf_used = hf_usage[n]
        assert hf_used is not None
        assert (usage[n].prompt_tokens, usage[n].completion_tokens) == \
            (hf_used.prompt_tokens, hf_used.completion_tokens), CONVERSATIONS[n]
