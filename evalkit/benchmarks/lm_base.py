"""What evalkit's two lm-eval models (``evalkit-hf``, ``evalkit-vllm``) share.

lm-eval's ``TemplateLM`` asks a model for tokenization (the EOT and prefix tokens, the
context length, encode and decode) and for rolling log-likelihoods, which both models
answer the same way, from a Hugging Face tokenizer and their own
``_loglikelihood_tokens``. Tokenization follows lm-eval's ``hf`` model (no special tokens
unless ``add_bos_token``), so both score exactly the tokens ``hf`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval import utils as lm_eval_utils
from lm_eval.api.model import TemplateLM

from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import render_chat
from evalkit.models.sources import resolve_model

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
