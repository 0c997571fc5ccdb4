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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.utils import resolve_max_length

from evalkit.benchmarks.lm_base import Request, TokenizerLM, variant_from_arguments
from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend
from evalkit.record.environment import cpu_has_native_bf16

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
            for start in range(0, len(rows), self._batch_size):
                batch_rows = rows[start : start + self._batch_size]
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
        logprobs = torch.log_softmax(logits.float(), dim=-1)  # [batch, kept columns, vocab]
        for b, row in enumerate(rows):
            for index, continuation in row.requests:
                columns = torch.tensor(scored_columns(continuation, row.segments[continuation]), device=self.device)
                targets = torch.tensor(continuation, device=self.device)
                scored = logprobs[b, columns]
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
