"""The Hugging Face transformers backend: base models, peft adapters, merged models; its logits processors.

Each base model is loaded once per backend. Candidates that share a base share its
weights: adapters are loaded into one ``PeftModel`` wrapper under their own names and
switched with ``set_adapter``; the bare base runs inside ``disable_adapter()``.
Generation is batched, left-padded, with items sorted by prompt length so that a batch
wastes little on padding. CPU by default (float32); CUDA in bfloat16 when a GPU is
present.

torch and transformers are imported inside the functions that use them: the backend
registry imports this module to learn its name (``@register_backend("hf")``), and a run
on another backend, or answered from the cache, never loads them.

Also here:

* Constrained decoding as a control: outputs forced to the suite's JSON schema
  (:func:`candidate_constraint`, :func:`json_schema_processor`).
* Sampling that does not depend on the batch: one seeded generator per sequence (:class:`SeededSampler`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from evalkit.errors import ConfigError, ModelError
from evalkit.models.backend import (
    Message,
    ModelVariant,
    ProgressCallback,
    local_identity,
    register_backend,
    resolve_dtype,
)
from evalkit.models.sources import check_adapter_dir
from evalkit.suite.config import GenerationConfig
from evalkit.usage.stage import BatchTimer, GenerationUsage

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

# transformers' own loading bars are turned off while evalkit runs (progress.library_bars_silenced),
# not for the whole process.


Method = TypeVar("Method", bound=Callable[..., Any])


def in_inference_mode(method: Method) -> Method:
    """Run ``method`` under ``torch.inference_mode()`` (``@torch.inference_mode()``, torch imported on call)."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.inference_mode():
            return method(*args, **kwargs)

    return cast("Method", run)


def pick_device() -> torch.device:
    """Return CUDA when a GPU is present, else the CPU."""
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """Resolve ``auto`` to bfloat16 on a GPU and float32 on a CPU (the cache key's rule too)."""
    import torch

    name = resolve_dtype(requested, device.type)
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


@dataclass
class LoadedBase:
    """A base model in memory, with the adapters loaded into it so far."""

    model: Any
    tokenizer: PreTrainedTokenizerBase
    peft_model: Any = None
    # Resident adapters, least recently used first (see MAX_RESIDENT_ADAPTERS).
    adapters: OrderedDict[str, Path] = field(default_factory=OrderedDict)
    # Every adapter name ever attached, resident or evicted: two candidates cannot share
    # a name even when one of them was evicted in between.
    names: dict[str, Path] = field(default_factory=dict)


# Adapters kept in memory on one base at once. A sweep of N checkpoints (or a parity run
# over several adapters) then costs the base plus two adapters whatever N is: the least
# recently used one is deleted from the PeftModel before another is loaded, and loaded
# again (a few MB read from disk) if it is needed later. Two, not one, so that a run that
# alternates between an adapter and its judge or benchmark pass does not reload.
MAX_RESIDENT_ADAPTERS = 2


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer for left-padded batched generation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def peft_adapter_name(variant: ModelVariant) -> str:
    """Return the name ``variant``'s adapter has inside the shared ``PeftModel``.

    The candidate's name (or the adapter directory's), with ``.`` written ``_``: peft names
    submodules after it and refuses a dot, which candidate names such as ``lora-v1.2`` have.
    """
    assert variant.adapter is not None
    return (variant.adapter_name or variant.adapter.name).replace(".", "_")


@register_backend("hf", identity=local_identity)
class HFBackend:
    """Generates with transformers; see the module docstring for how models are shared."""

    def __init__(self, device: torch.device | None = None) -> None:
        """Create a backend on ``device`` (default: CUDA if present, else CPU)."""
        self.device = device or pick_device()
        self._bases: dict[tuple[Path, str], LoadedBase] = {}
        self.last_usage: list[GenerationUsage | None] = []

    def load(self, variant: ModelVariant) -> LoadedBase:
        """Load the variant's base model (once) and its adapter (once)."""
        dtype = pick_dtype(variant.dtype, self.device)
        key = (variant.model.path, str(dtype))
        base = self._bases.get(key)
        if base is None:
            from transformers import AutoModelForCausalLM

            try:
                model = AutoModelForCausalLM.from_pretrained(str(variant.model.path), dtype=dtype)
            except (OSError, ValueError) as exc:
                raise ModelError(f"model '{variant.model.source}' failed to load: {exc}") from None
            model.to(self.device).eval()  # type: ignore[arg-type]
            base = LoadedBase(model=model, tokenizer=load_tokenizer(variant.model.path))
            self._bases[key] = base
        if variant.adapter is not None:
            self._attach_adapter(base, variant)
        return base

    def _attach_adapter(self, base: LoadedBase, variant: ModelVariant) -> None:
        assert variant.adapter is not None
        name = peft_adapter_name(variant)
        if base.names.get(name, variant.adapter) != variant.adapter:
            raise ModelError(f"two adapters share the name '{name}'; give candidates unique names")
        if name in base.adapters:
            base.adapters.move_to_end(name)
            return
        check_adapter_dir(variant.adapter)
        import torch
        from peft import PeftModel

        # Always in inference mode: an adapter loaded while generating is made of inference
        # tensors, and peft toggles every adapter's requires_grad when it loads or deletes
        # one, which torch refuses on inference tensors outside inference mode (the
        # benchmark path loads its variant outside it).
        with torch.inference_mode():
            try:
                if base.peft_model is None:
                    base.peft_model = PeftModel.from_pretrained(base.model, str(variant.adapter), adapter_name=name)
                    base.peft_model.eval()
                else:
                    base.peft_model.load_adapter(str(variant.adapter), adapter_name=name)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise ModelError(
                    f"adapter {variant.adapter} failed to load onto '{variant.model.source}': {exc}") from None
            base.adapters[name] = variant.adapter
            base.names[name] = variant.adapter
            while len(base.adapters) > MAX_RESIDENT_ADAPTERS:
                evicted, _ = base.adapters.popitem(last=False)
                base.peft_model.delete_adapter(evicted)

    @contextlib.contextmanager
    def active(self, variant: ModelVariant) -> Iterator[tuple[Any, PreTrainedTokenizerBase]]:
        """Yield the model to call for ``variant`` (adapter switched on or off) and its tokenizer."""
        # Inference mode around the switch and its undoing too: the adapters are inference
        # tensors (see _attach_adapter), and peft toggles their requires_grad both when it
        # switches and when disable_adapter() ends.
        import torch

        with torch.inference_mode():
            base = self.load(variant)
            if base.peft_model is None:
                yield base.model, base.tokenizer
            elif variant.adapter is None:
                with base.peft_model.disable_adapter():
                    yield base.peft_model, base.tokenizer
            else:
                base.peft_model.set_adapter(peft_adapter_name(variant))
                yield base.peft_model, base.tokenizer

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the chat-templated prompt text for a conversation."""
        tokenizer = self.load(variant).tokenizer
        return render_chat(tokenizer, conversation)

    @in_inference_mode
    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Generate one completion per conversation; see :mod:`evalkit.models.backend`.

        With ``seeds`` (one per conversation) and temperature > 0, each conversation
        samples from its own generator (:class:`SeededSampler`).
        """
        prompts = [self.render_prompt(variant, c) for c in conversations]
        outputs: list[str] = [""] * len(prompts)
        with self.active(variant) as (model, tokenizer):
            encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
            # Longest first: memory peaks on the first batch, and padding stays small.
            order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
            usage: list[GenerationUsage | None] = [None] * len(prompts)
            for start in range(0, len(order), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                timer = BatchTimer(on_progress)  # reports each row as it ends: progress within one batch
                texts = self._generate_batch(model, tokenizer, [encoded[i] for i in batch], settings, timer,
                                             seeds=[seeds[i] for i in batch] if seeds is not None else None,
                                             constraint=variant.constraint)
                for index, text, count in zip(batch, texts, timer.completion_tokens, strict=True):
                    outputs[index] = text
                    # One generate call cannot time a row: each item gets its share of the
                    # batch's time (labelled so), and of the tokens the batch decoded. Every
                    # row gets its first token at the same step, so that time is each row's own.
                    usage[index] = GenerationUsage(len(encoded[index]), count, timer.seconds / len(batch),
                                                   timer.first_token_seconds, latency_source="batch_share",
                                                   decoded_tokens=float(timer.steps))
        # Read by evalkit.usage.stage.UsageMeter: one entry per conversation of this call.
        self.last_usage = usage
        return outputs

    def _generate_batch(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        token_ids: list[list[int]],
        settings: GenerationConfig,
        timer: BatchTimer | None = None,
        seeds: Sequence[int] | None = None,
        constraint: str | None = None,
    ) -> list[str]:
        padded = tokenizer.pad({"input_ids": token_ids}, padding=True, return_tensors="pt")
        input_ids = padded["input_ids"].to(self.device)
        attention_mask = padded["attention_mask"].to(self.device)
        greedy: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        processors: list[Any] = []
        if constraint is not None:

            processors.append(json_schema_processor(tokenizer, int(model.config.vocab_size), constraint))
        if settings.temperature > 0 and seeds is not None:

            # Sampling by Gumbel-max after any mask, then greedy: each row draws from its own seed.
            processors.append(SeededSampler(seeds, settings.temperature))
            sampling = greedy
        elif settings.temperature > 0:
            sampling = {"do_sample": True, "temperature": settings.temperature}
        else:
            sampling = greedy
        if processors:
            from transformers import LogitsProcessorList

            sampling = {**sampling, "logits_processor": LogitsProcessorList(processors)}
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=settings.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stopping_criteria=timer.stopping_criteria(input_ids.shape[1], tokenizer.eos_token_id)
            if timer is not None else None,
            **sampling,
        )
        new_tokens = generated[:, input_ids.shape[1] :]
        if timer is not None:
            timer.finish(new_tokens, tokenizer.eos_token_id)
        return [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def close(self) -> None:
        """Drop every loaded model."""
        self._bases.clear()
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


def render_chat(tokenizer: PreTrainedTokenizerBase, conversation: list[Message]) -> str:
    """Apply the tokenizer's chat template, ending with the assistant's turn opened."""
    if tokenizer.chat_template is None:
        # A model without a chat template gets the messages as plain text.
        return "\n\n".join(m["content"] for m in conversation) + "\n"
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return str(text)


def adapter_base_model(adapter: Path) -> str | None:
    """Return the base model name recorded in an adapter's config, if any."""
    config = adapter / "adapter_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text()).get("base_model_name_or_path")
    return str(value) if value else None


# Constrained decoding as a control: outputs forced to the suite's JSON schema.
#
# A candidate with ``constrain: json_schema`` generates under the schema of the suite's
# ``json_schema`` check. Its outputs are then valid by construction, so what it scores
# beyond the unconstrained base on the *labels* (exact match, field accuracy) is what a
# format fix alone buys; what a fine-tune gains beyond the constrained base is what
# fine-tuning taught about the task ("did fine-tuning teach the labels, or only the
# format?").
#
# The HF backend masks logits with xgrammar's grammar matcher (the library vLLM itself
# uses for structured outputs), one matcher per sequence; the vLLM backend passes the
# schema as ``StructuredOutputsParams(json=...)``. Whitespace between JSON tokens is
# not free (``any_whitespace=False``), so a model cannot spend its token budget on
# spaces and be cut off mid-object.

if TYPE_CHECKING:
    from evalkit.suite.config import CandidateConfig, SuiteConfig


def candidate_constraint(suite: SuiteConfig, config: CandidateConfig) -> str | None:
    """Return the JSON schema text a candidate's outputs are forced to, or None.

    Raises:
        ConfigError: the schema file is missing or not JSON (names the file).
    """
    if config.constrain != "json_schema":
        return None
    spec = next(check for check in suite.checks if check.name == "json_schema")
    relative = spec.options.get("path") or spec.options.get("value")
    path = suite.resolve(str(relative))
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{suite.source}: candidate '{config.name}': schema {path}: {exc.strerror}; "
                          "check the json_schema check's path") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the schema file") from None
    # Property order kept: the grammar writes keys in it, as the reference answers do.
    return json.dumps(schema)


@lru_cache(maxsize=8)
def _compiled(tokenizer_key: int, tokenizer: Any, vocab_size: int, schema: str) -> Any:
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    return xgrammar.GrammarCompiler(info).compile_json_schema(schema, any_whitespace=False)


def json_schema_processor(tokenizer: Any, vocab_size: int, schema: str) -> Any:
    """Return a fresh HF logits processor forcing each sequence of one ``generate`` call to ``schema``.

    Args:
        tokenizer: the model's HF tokenizer.
        vocab_size: the model's logits width (may exceed the tokenizer's vocabulary).
        schema: the JSON schema text.
    """
    from xgrammar.contrib.hf import LogitsProcessor

    # A processor serves one generate() call; the compiled grammar is reused.
    return LogitsProcessor(_compiled(id(tokenizer), tokenizer, vocab_size, schema))


# Sampling that does not depend on the batch: one seeded generator per sequence.
#
# transformers' sampling draws every row of a batch from one global generator, so a
# sequence's output changes with the rows beside it. Here each sequence has its own
# ``torch.Generator`` (seeded per item and sample, :func:`evalkit.checks.sampling.sample_seed`)
# and samples by the Gumbel-max trick: ``argmax(logits / t + g)`` with ``g`` standard
# Gumbel noise is an exact draw from ``softmax(logits / t)``. Added as a logits
# processor in front of greedy decoding, it keeps masks from processors before it
# (a token at -inf stays impossible), and a sequence's draws depend only on its seed.

# Keeps log(-log(u)) finite at the ends of (0, 1).
_TINY = 1e-20


class SeededSampler:
    """Turns greedy decoding into temperature sampling with one generator per row (a logits processor)."""

    def __init__(self, seeds: Sequence[int], temperature: float) -> None:
        """One generator per batch row, seeded from ``seeds``; ``temperature`` > 0."""
        import torch

        if temperature <= 0:
            raise ValueError("SeededSampler needs temperature > 0")
        self.temperature = temperature
        self.generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Return ``scores / t`` plus per-row Gumbel noise (the argmax is then a sample)."""
        import torch

        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"SeededSampler has {len(self.generators)} seeds for {scores.shape[0]} rows")
        vocab = scores.shape[-1]
        uniform = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(_TINY, 1.0 - 1e-16)))
        scaled = scores.double() / self.temperature + gumbel.to(scores.device)
        return scaled.to(scores.dtype)  # type: ignore[return-value]
