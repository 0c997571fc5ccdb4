"""The ``local`` judge: an HF model in this process, scoring like G-Eval.

Instead of sampling one digit per criterion (noisy for a small judge), the judge's
answer is written for it, up to each score: after the prompt comes
``{"format": `` and the model's next-token probabilities over the score tokens
``1``..``5`` give the criterion's distribution; the score is their probability-weighted
mean. The most likely digit is then written and the next criterion follows
(``, "accuracy": ``), all on one KV cache, so a criterion costs a few tokens, not a
prompt. Pairwise verdicts read the probabilities of ``A``, ``B`` and ``tie`` after
``{"winner": "``.

Models load through :class:`evalkit.models.hf.HFBackend`; the run's own HF backend is
reused when there is one, so a judge sharing a base with a candidate loads it once
(an adapter loaded for a candidate is switched off while judging).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalkit.judges.clients import Judgment, PairwiseJudgment, register_provider, weighted_score
from evalkit.judges.rubric import SCALE, Rubric
from evalkit.judges.spec import JudgeClientSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend, in_inference_mode, render_chat
from evalkit.models.sources import resolve_model
from evalkit.prompting import Message

if TYPE_CHECKING:
    import torch


def _single_token(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


class LocalJudge:
    """Scores with an in-process model by probability-weighted score tokens."""

    concurrency = 1  # torch already uses every core; threads would only contend

    def __init__(self, spec: JudgeClientSpec, backend: HFBackend | None = None) -> None:
        """Resolve the judge model; it loads on first use.

        Raises:
            ModelError: the model source does not resolve.
        """
        self.spec = spec
        self._owns_backend = backend is None
        self.backend = backend or HFBackend()
        self.variant = ModelVariant(model=resolve_model(spec.model), dtype=spec.dtype)
        self.identity = f"local:{spec.model}:{self.variant.model.fingerprint[:16]}:{spec.dtype}"
        self._score_tokens: dict[int, list[int]] | None = None
        self._space_in_prefix = True

    def _prepare(self, tokenizer: Any) -> dict[int, list[int]]:
        if self._score_tokens is None:
            spaced = {s: _single_token(tokenizer, f" {s}") for s in SCALE}
            bare = {s: _single_token(tokenizer, str(s)) for s in SCALE}
            # Where " 4" is one token the prefix stops before the space and both forms
            # count; otherwise the space is written and the bare digit follows it.
            self._space_in_prefix = not all(v is not None for v in spaced.values())
            self._score_tokens = {
                s: [t for t in ((bare[s],) if self._space_in_prefix else (spaced[s], bare[s])) if t is not None]
                for s in SCALE
            }
        return self._score_tokens

    def _step(self, model: Any, ids: list[int], cache: Any) -> tuple[torch.Tensor, Any]:
        import torch

        inputs = torch.tensor([ids], device=self.backend.device)
        output = model(input_ids=inputs, past_key_values=cache, use_cache=True)
        return torch.softmax(output.logits[0, -1].float(), dim=-1), output.past_key_values

    @in_inference_mode
    def pointwise(self, messages: list[Message], rubric: Rubric) -> Judgment:
        """Score every criterion by its probability-weighted mean; see the module docstring."""
        with self.backend.active(self.variant) as (model, tokenizer):
            score_tokens = self._prepare(tokenizer)
            gap = " " if self._space_in_prefix else ""
            text = render_chat(tokenizer, messages)
            cache = None
            scores: dict[str, float] = {}
            distributions: dict[str, dict[int, float]] = {}
            masses: list[str] = []
            piece = text
            for index, name in enumerate(rubric.criterion_names):
                piece += ("{" if index == 0 else ", ") + f'"{name}":{gap}'
                probs, cache = self._step(model, tokenizer.encode(piece, add_special_tokens=False), cache)
                raw = {s: float(sum(probs[t] for t in ids)) for s, ids in score_tokens.items()}
                scores[name], distributions[name] = weighted_score(raw)
                masses.append(f"{name} {sum(raw.values()):.2f}")
                best = max(distributions[name], key=lambda s: distributions[name][s])
                piece = str(best)
        summary = "; ".join(
            f"{name}: " + " ".join(f"p{s}={p:.2f}" for s, p in distributions[name].items()) for name in scores
        )
        reasoning = f"probability-weighted score tokens ({summary}); mass on score tokens: {', '.join(masses)}"
        return Judgment(scores=scores, reasoning=reasoning, distributions=distributions)

    @in_inference_mode
    def pairwise(self, messages: list[Message]) -> PairwiseJudgment:
        """Pick the likelier of ``A``, ``B`` and ``tie`` after ``{"winner": "``."""
        with self.backend.active(self.variant) as (model, tokenizer):
            text = render_chat(tokenizer, messages) + '{"winner": "'
            probs, _ = self._step(model, tokenizer.encode(text, add_special_tokens=False), None)
            choice_probs = {
                choice: float(probs[tokenizer.encode(choice, add_special_tokens=False)[0]])
                for choice in ("A", "B", "tie")
            }
        winner = max(choice_probs, key=lambda c: choice_probs[c])
        detail = " ".join(f"p({c})={p:.2f}" for c, p in choice_probs.items())
        return PairwiseJudgment(winner=winner, reasoning=f"most likely verdict: {detail}")

    def close(self) -> None:
        """Free the model when this judge loaded it (not when it borrowed the run's backend)."""
        if self._owns_backend:
            self.backend.close()


@register_provider("local")
def local_judge(spec: JudgeClientSpec, backends: Mapping[str, Any]) -> LocalJudge:
    """Build the ``local`` judge, on the run's ``hf`` backend when it has one (a shared base loads once)."""
    shared = backends.get("hf")
    return LocalJudge(spec, shared if isinstance(shared, HFBackend) else None)
