"""Repeated sampling: k outputs per item, per-item rates, pass@k and pass^k, flaky items.

With ``generation: {samples: k, temperature: t, seed: s}`` every item is generated k
times. Each (item, sample) draws from its own random generator seeded by
:func:`sample_seed` (the suite's seed, the item's id, the sample number), so the
outputs do not depend on batching or on which other items ran, and two runs with one
seed are identical.

Every check then runs on each sample, and the item's score is the mean over its
samples: for a pass/fail check that is the item's pass rate, the pass@1 estimate.
Beside it, per pass/fail check and each k of ``pass_at``:

* ``<check>.pass@k``: the chance that at least one of k samples passes, by the
  unbiased estimator of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``;
* ``<check>.pass^k``: the chance that all k pass (tau-bench): ``C(c, k) / C(n, k)``,

with n samples of which c pass. Items stay the unit of the paired statistics: the
per-item rates are compared as continuous values (:func:`is_rate_metric` tells the
comparison so, whatever values they happen to take). An item is *flaky* when its
samples disagree on some pass/fail check.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from math import comb
from typing import TYPE_CHECKING, Any

from evalkit.checks import Check, Score
from evalkit.record.run_facts import SamplingSection, SamplingSummary

if TYPE_CHECKING:
    from evalkit.record.results import ItemResult, RunResult
    from evalkit.suite.config import GenerationConfig

RATE_SUFFIXES = (".pass@", ".pass^")
MAX_FLAKY_LISTED = 200


def sample_seed(seed: int, item_id: str, sample: int) -> int:
    """Return the 63-bit seed of one (item, sample): a hash of the suite seed, item id and sample."""
    digest = hashlib.sha256(json.dumps([seed, str(item_id), sample]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_key(generation_key: str, seed: int, sample: int) -> str:
    """Return the generation-cache key of one sample of a sampled generation."""
    return hashlib.sha256(json.dumps([generation_key, "sample", seed, sample]).encode()).hexdigest()


def pass_at_k(n: int, c: int, k: int) -> float:
    """Return the unbiased estimate of pass@k from n samples, c of them passing.

    Raises:
        ValueError: k is not in 1..n or c is not in 0..n.
    """
    _check_counts(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Return the unbiased estimate of pass^k (all k samples pass) from n samples, c passing.

    Raises:
        ValueError: k is not in 1..n or c is not in 0..n.
    """
    _check_counts(n, c, k)
    return comb(c, k) / comb(n, k)


def _check_counts(n: int, c: int, k: int) -> None:
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")


def is_pass_fail(values: Sequence[float]) -> bool:
    """Return True when every value is 0 or 1."""
    return all(v in (0.0, 1.0) for v in values)


def is_rate_metric(metric: str, sampling: SamplingSection | None) -> bool:
    """Return True when a run's metric is a per-item rate over samples (so: continuous).

    Args:
        metric: the metric's name.
        sampling: the run's ``sampling`` section (there when samples > 1), typed.
    """
    if sampling is None:
        return False
    return sampling.samples > 1 and (metric in sampling.metrics or any(s in metric for s in RATE_SUFFIXES))


def record_sampling(run: RunResult, candidate: str, settings: GenerationConfig, scored: Mapping[str, Any]) -> None:
    """Add one candidate's :func:`score_samples` result to the run's ``sampling`` section."""
    recorded: SamplingSection = run.section("sampling") or SamplingSummary()
    metrics = dict.fromkeys(recorded.metrics)
    metrics.update(dict.fromkeys(scored["metrics"]))
    updated = SamplingSummary(
        samples=settings.samples, temperature=settings.temperature, seed=settings.seed,
        pass_at=list(settings.pass_at) or [settings.samples], metrics=list(metrics),
        flaky={**recorded.flaky, candidate: list(scored["flaky"])},
        flaky_total={**recorded.flaky_total, candidate: int(scored["flaky_total"])})
    run.set_section("sampling", updated)


def combine_samples(per_sample: Sequence[Mapping[str, Score]], pass_at: Sequence[int],
                    pass_fail: set[str]) -> dict[str, Score]:
    """Return one item's scores from its samples' scores.

    Args:
        per_sample: each sample's check scores.
        pass_at: the k values of pass@k and pass^k.
        pass_fail: the metrics that are pass/fail over the whole candidate.
    """
    n = len(per_sample)
    names: dict[str, None] = {}
    for scores in per_sample:
        names.update(dict.fromkeys(scores))
    combined: dict[str, Score] = {}
    for name in names:
        values = [s[name].value for s in per_sample if name in s]
        failing = next((s[name].reason for s in per_sample if name in s and s[name].reason), "")
        if name not in pass_fail:
            combined[name] = Score(statistics.fmean(values), f"mean over {len(values)} samples")
            continue
        passed = int(sum(values))
        reason = f"{passed} of {len(values)} samples pass" + (f"; a failing one: {failing}" if failing else "")
        combined[name] = Score(passed / len(values), reason)
        if len(values) == n:
            for k in pass_at:
                combined[f"{name}.pass@{k}"] = Score(pass_at_k(n, passed, k), reason)
                combined[f"{name}.pass^{k}"] = Score(pass_hat_k(n, passed, k), reason)
    return combined


def flaky_metrics(per_sample: Sequence[Mapping[str, Score]], pass_fail: set[str]) -> list[str]:
    """Return the pass/fail metrics on which an item's samples disagree."""
    flaky = []
    for name in sorted(pass_fail):
        values = {s[name].value for s in per_sample if name in s}
        if len(values) > 1:
            flaky.append(name)
    return flaky


def pass_fail_metrics(per_item: Sequence[Sequence[Mapping[str, Score]]]) -> set[str]:
    """Return the metrics whose every sample value, over every item, is 0 or 1."""
    seen: dict[str, bool] = {}
    for samples in per_item:
        for scores in samples:
            for name, score in scores.items():
                seen[name] = seen.get(name, True) and score.value in (0.0, 1.0)
    return {name for name, binary in seen.items() if binary}


@dataclass(frozen=True)
class SampledGeneration:
    """The generations one candidate asks for: one per (item, sample).

    Attributes:
        keys: each generation's cache key.
        conversations: each generation's chat messages.
        item_index: each generation's item (an index into the suite's items).
        seeds: each generation's seed, or None for greedy decoding (no seeds needed).
    """

    keys: list[str]
    conversations: list[list[dict[str, str]]]
    item_index: list[int]
    seeds: list[int] | None

    def generate_kwargs(self, todo: Sequence[int]) -> dict[str, Any]:
        """Return the extra backend arguments (``seeds``) for the generations ``todo``."""
        return {} if self.seeds is None else {"seeds": [self.seeds[i] for i in todo]}

    def of_item(self, index: int) -> list[int]:
        """Return the generations of item ``index``, in sample order."""
        return self._by_item.get(index, [])

    @cached_property
    def _by_item(self) -> dict[int, list[int]]:
        # Grouped once: asking each item for its generations by a scan would be quadratic.
        groups: dict[int, list[int]] = {}
        for generation, owner in enumerate(self.item_index):
            groups.setdefault(owner, []).append(generation)
        return groups


def expand_samples(settings: GenerationConfig, item_ids: Sequence[str], keys: Sequence[str],
                   conversations: Sequence[list[dict[str, str]]]) -> SampledGeneration:
    """Return the generations for ``settings.samples`` outputs per item.

    Greedy decoding (temperature 0) keeps one generation per item under its usual key;
    sampling gives each (item, sample) its own key and seed, so cached samples are reused
    only for the same seed.
    """
    if settings.temperature == 0:
        return SampledGeneration(list(keys), list(conversations), list(range(len(keys))), None)
    out_keys, out_conversations, owners, seeds = [], [], [], []
    for index, (item_id, key, conversation) in enumerate(zip(item_ids, keys, conversations, strict=True)):
        for sample in range(settings.samples):
            out_keys.append(sample_key(key, settings.seed, sample))
            out_conversations.append(conversation)
            owners.append(index)
            seeds.append(sample_seed(settings.seed, item_id, sample))
    return SampledGeneration(out_keys, out_conversations, owners, seeds)


def score_samples(checks: Sequence[Check], items: Sequence[ItemResult], outputs: Sequence[Sequence[str]],
                  settings: GenerationConfig) -> dict[str, Any]:
    """Score every item on all its samples; return the candidate's part of the sampling section.

    Each item's scores become the per-sample means, plus pass@k and pass^k of its
    pass/fail top-level checks (field metrics, ``field.x``, keep only their rate); its
    prediction stays the first sample. Returns ``{"metrics", "flaky", "flaky_total"}``:
    the rate metrics, and the items whose samples disagree with their outputs.
    """
    per_item = [[_check_scores(checks, text, item.expected) for text in texts]
                for item, texts in zip(items, outputs, strict=True)]
    binary = pass_fail_metrics(per_item)
    pass_at = list(settings.pass_at) or ([settings.samples] if settings.samples > 1 else [])
    flaky: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    for item, samples, texts in zip(items, per_item, outputs, strict=True):
        with_k = {name for name in binary if "." not in name}
        item.scores.update(combine_samples(samples, pass_at, with_k))
        metrics.update(dict.fromkeys(item.scores))
        disagree = flaky_metrics(samples, binary)
        if disagree:
            flaky.append({"item_id": item.item_id, "rates": {m: item.scores[m].value for m in disagree},
                          "outputs": [clip_output(t) for t in texts]})
    return {"metrics": list(metrics), "flaky": flaky[:MAX_FLAKY_LISTED], "flaky_total": len(flaky)}


def _check_scores(checks: Sequence[Check], prediction: str, expected: str) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for check in checks:
        scores.update(check(prediction, expected))
    return scores


def clip_output(text: str, limit: int = 600) -> str:
    """Return an output cut to ``limit`` characters for listing (flaky items)."""
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text):,} characters in all]"
