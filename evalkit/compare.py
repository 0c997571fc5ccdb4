"""Baseline vs candidate on the same items: deltas, thresholds, paired statistics, verdicts.

For every metric both sides measured, items are paired by id and compared:

* the absolute and relative delta of the means (candidate - baseline);
* a seeded paired bootstrap 95% interval on the delta (:mod:`evalkit.stats`);
* a paired test chosen by the metric's kind, which its check declared when it
  registered (:func:`metric_kind`), not by its values: McNemar's exact test for
  pass/fail metrics (``binary``), the Wilcoxon signed-rank test for judge scores
  (``judge.*``) and ``ordinal`` ones, and the bootstrap's own p-value for
  ``continuous`` ones (a continuous metric that happens to be all 0/1 included);
* the items that flipped pass -> fail and fail -> pass (pass/fail metrics).

How the interval and the threshold combine into a verdict
---------------------------------------------------------
A metric's threshold (``3%`` relative to the baseline's value, or ``2pt``: 2 points,
i.e. 0.02 in the metric's units) is the largest drop that is tolerated. The verdict
asks what the paired bootstrap 95% interval of the delta shows about that drop, with
the same burden of proof in both directions (:func:`drop_outcome`, the one rule the
bars, the CLI, the report and the pytest plugin all rest on):

* ``regressed``: the whole interval lies beyond the allowed drop (its upper end is a
  larger drop than the threshold allows) and the paired test agrees (p < 0.05);
* ``improved``: the candidate is significantly better (p < 0.05 and the interval
  excludes 0 on the positive side);
* ``no_change``: the whole interval lies within the allowed drop, and the set has the
  items to have seen a drop of the threshold's size with 80% power (a zero-width
  interval from a few identical answers proves nothing);
* ``inconclusive``: anything else: the interval straddles the allowed drop, or the set
  is too small. ``items_needed`` says how many paired items would decide it: when the
  interval straddles the allowed drop, those that give 80% power to put it on one side,
  at the observed delta and spread (:func:`_items_to_decide`); when it is within but
  the set is small, those that give 80% power against a drop of the threshold's size
  (:func:`evalkit.stats.mcnemar_sample_size` for pass/fail metrics,
  :func:`evalkit.stats.paired_mean_sample_size` otherwise), which is also the
  non-inferiority size: the items that show a drop within the threshold when the
  candidate truly equals the baseline.

A metric that ``regressed`` fails the run (exit 1). Whether an ``inconclusive`` drop
bar fails it is the suite's ``inconclusive:`` choice (default ``fail``, see
:mod:`evalkit.bars`); an inconclusive metric that no bar names is reported, not gated.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from evalkit.errors import ConfigError
from evalkit.results import CandidateResult, RunResult
from evalkit.sampling import is_rate_metric
from evalkit.stats import (
    ALPHA,
    POWER,
    mcnemar_exact,
    mcnemar_sample_size,
    paired_bootstrap,
    paired_mean_sample_size,
    rng_for,
    wilcoxon_signed_rank,
)
from evalkit.thresholds import (
    JUDGE_PREFIX,
    Threshold,
    ThresholdPolicy,
)

if TYPE_CHECKING:
    from evalkit.config import SuiteConfig

Verdict = Literal["improved", "regressed", "no_change", "inconclusive"]
DropOutcome = Literal["beyond", "within", "undecided"]
MetricKind = Literal["binary", "judge", "continuous", "ordinal"]
TestName = Literal["mcnemar", "wilcoxon", "bootstrap"]

# Float noise must not turn a drop of exactly the threshold into a regression.
_TOLERANCE = 1e-9


@dataclass
class MetricComparison:
    """One metric of one candidate against the baseline, on the items both have.

    Attributes:
        metric: the metric's name.
        kind: ``binary`` (pass/fail), ``judge`` (judge scores), ``ordinal`` (ranked levels a
            check declared) or ``continuous``.
        n_items: paired items (present on both sides).
        baseline_value: the baseline's mean over the paired items.
        candidate_value: the candidate's mean over the paired items.
        delta: ``candidate_value - baseline_value``.
        relative_delta: ``delta / baseline_value`` (None when the baseline is 0).
        ci_low: lower end of the paired bootstrap 95% interval on ``delta``.
        ci_high: upper end of that interval.
        p_value: the paired test's two-sided p-value.
        test: ``mcnemar``, ``wilcoxon`` or ``bootstrap``.
        threshold: the tolerated drop (``3%`` or ``2pt``).
        verdict: see the module docstring.
        items_needed: paired items for 80% power against a drop of the threshold's size
            (set when the verdict is ``inconclusive``).
        pass_to_fail: ids of items the baseline passed and the candidate failed.
        fail_to_pass: ids of items the baseline failed and the candidate passed.
    """

    metric: str
    kind: MetricKind
    n_items: int
    baseline_value: float
    candidate_value: float
    delta: float
    relative_delta: float | None
    ci_low: float
    ci_high: float
    p_value: float
    test: TestName
    threshold: str
    verdict: Verdict
    items_needed: int | None = None
    pass_to_fail: list[str] = field(default_factory=list)
    fail_to_pass: list[str] = field(default_factory=list)

    @property
    def significant(self) -> bool:
        """True when the test and the interval agree the delta is not 0."""
        return is_significant(self.p_value, self.ci_low, self.ci_high)

    def explain(self) -> str:
        """Return one sentence saying why the verdict is what it is."""
        drop = -self.delta
        allowed = Threshold.parse(self.threshold).allowed_drop(self.baseline_value)
        sig = f"p={self.p_value:.3g}, 95% CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        if self.verdict == "regressed":
            return (f"dropped {drop:.4f}: the whole 95% CI is beyond the {allowed:.4f} allowed by "
                    f"{self.threshold}, significant ({sig})")
        if self.verdict == "improved":
            return f"improved by {self.delta:.4f}, significant ({sig})"
        if self.verdict == "inconclusive":
            need = f"; about {self.items_needed} paired items would be needed" if self.items_needed else ""
            if drop > allowed + _TOLERANCE and not self.significant:
                return f"dropped {drop:.4f} (> {allowed:.4f} allowed) but not significant ({sig}){need}"
            if drop > allowed + _TOLERANCE:
                return (f"dropped {drop:.4f} (> {allowed:.4f} allowed), but the 95% CI reaches back within "
                        f"{self.threshold} ({sig}){need}")
            if -self.ci_low > allowed + _TOLERANCE:
                return (f"a drop of {max(drop, 0.0):.4f} is within {self.threshold}, but the 95% CI reaches a drop "
                        f"of {-self.ci_low:.4f} (> {allowed:.4f} allowed) ({sig}){need}")
            return (f"{self.n_items} items cannot show a drop of {self.threshold} with 80% power "
                    f"({sig}){need}")
        return f"no drop beyond {self.threshold}: the whole 95% CI is within it ({sig})"


@dataclass
class CandidateComparison:
    """Every metric of one candidate against its baseline.

    Attributes:
        candidate: the candidate's name.
        baseline: the baseline candidate's name.
        metrics: metric -> comparison.
    """

    candidate: str
    baseline: str
    metrics: dict[str, MetricComparison] = field(default_factory=dict)

    @property
    def regressions(self) -> list[MetricComparison]:
        """The metrics whose verdict is ``regressed``."""
        return [m for m in self.metrics.values() if m.verdict == "regressed"]


@dataclass
class Comparison:
    """Candidates against a baseline, within one run or across two runs.

    Attributes:
        baseline: the baseline candidate's name; empty when two runs are compared
            candidate by candidate (each :class:`CandidateComparison` names its own).
        candidates: candidate name -> its comparison.
        baseline_run_id: the run the baseline's results come from.
        candidate_run_id: the run the candidates' results come from.
        seed: the bootstrap seed.
        notes: why something could not be compared (a skipped baseline...).
    """

    baseline: str
    candidates: dict[str, CandidateComparison] = field(default_factory=dict)
    baseline_run_id: str = ""
    candidate_run_id: str = ""
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def deployable(self) -> bool:
        """True when no metric of any candidate regressed."""
        return not self.regressions

    @property
    def regressions(self) -> list[tuple[str, MetricComparison]]:
        """Every (candidate, metric comparison) whose verdict is ``regressed``."""
        return [(name, m) for name, c in self.candidates.items() for m in c.regressions]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in ``run.sections["comparison"]``."""
        data = asdict(self)
        data["deployable"] = self.deployable
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """Rebuild a comparison from :meth:`to_dict`'s output."""
        candidates = {
            name: CandidateComparison(
                candidate=c["candidate"],
                baseline=c["baseline"],
                metrics={m: MetricComparison(**mc) for m, mc in c["metrics"].items()},
            )
            for name, c in data.get("candidates", {}).items()
        }
        return cls(baseline=data.get("baseline", ""), candidates=candidates,
                   baseline_run_id=data.get("baseline_run_id", ""),
                   candidate_run_id=data.get("candidate_run_id", ""),
                   seed=int(data.get("seed", 0)), notes=list(data.get("notes", [])))


def is_significant(p_value: float, ci_low: float, ci_high: float) -> bool:
    """Return True when p < 0.05 and the interval excludes 0 (see the module docstring)."""
    return p_value < ALPHA and (ci_low > 0.0 or ci_high < 0.0)


def drop_outcome(
    ci_low: float, ci_high: float, p_value: float, allowed: float, n_items: int, items_needed: int | None
) -> DropOutcome:
    """Decide what the paired interval shows about a drop: the one rule every gate uses.

    Args:
        ci_low: lower end of the 95% interval of the delta (candidate - baseline).
        ci_high: its upper end.
        p_value: the paired test's p-value.
        allowed: the tolerated absolute drop (:meth:`Threshold.allowed_drop`), >= 0.
        n_items: the paired items.
        items_needed: items for 80% power against a drop of ``allowed`` (None: no size needed).

    Returns:
        ``beyond``: the whole interval is a larger drop than allowed and the test agrees;
        ``within``: the whole interval is within the allowed drop, on enough items (or the
        candidate is significantly better); ``undecided`` otherwise.
    """
    if ci_high < -allowed - _TOLERANCE and p_value < ALPHA:
        return "beyond"
    if ci_low >= -allowed - _TOLERANCE:
        powered = items_needed is None or n_items >= items_needed
        better = ci_low > 0.0 and p_value < ALPHA
        if powered or better:
            return "within"
    return "undecided"


def metric_kind(metric: str, baseline: np.ndarray, candidate: np.ndarray,
                declared: str | None = None) -> MetricKind:
    """Classify a metric for its paired test: by what its check declared, never by its values.

    A check's metrics carry the kind the check registered with (``binary``, ``continuous``,
    ``ordinal``: :mod:`evalkit.checks.registry`), so a continuous metric that happens to
    be all 0/1 still gets the continuous test. Judge scores are known by name. Only a
    metric nothing declared (a benchmark's per-item values, a run stored before kinds were
    recorded) is classified by its values: all 0/1 is pass/fail, else continuous.
    """
    if declared in ("binary", "continuous", "ordinal"):
        return declared  # type: ignore[return-value]
    if metric.startswith(JUDGE_PREFIX):
        return "judge"
    if np.all((baseline == 0.0) | (baseline == 1.0)) and np.all((candidate == 0.0) | (candidate == 1.0)):
        return "binary"
    return "continuous"


def compare_metric(
    metric: str,
    ids: Sequence[str],
    baseline: np.ndarray,
    candidate: np.ndarray,
    threshold: str,
    rng: np.random.Generator,
    kind: MetricKind | None = None,
) -> MetricComparison:
    """Compare one metric on paired items and give its verdict.

    Args:
        metric: the metric's name (``judge.*`` marks judge scores).
        ids: the paired items' ids, in the order of the arrays.
        baseline: the baseline's values.
        candidate: the candidate's values, paired with ``baseline``.
        threshold: the tolerated drop, ``3%`` or ``2pt``.
        rng: the bootstrap's random generator.
        kind: the metric's kind when the caller knows it (declared by its check); default
            :func:`metric_kind` from its name and values.
    """
    n = len(ids)
    kind = kind or metric_kind(metric, baseline, candidate)
    boot = paired_bootstrap(baseline, candidate, rng)
    base_mean, cand_mean = float(baseline.mean()), float(candidate.mean())
    delta = cand_mean - base_mean
    pass_to_fail: list[str] = []
    fail_to_pass: list[str] = []
    test: TestName
    if kind == "binary":
        test = "mcnemar"
        p_value = mcnemar_exact(baseline, candidate).p_value
        base_pass, cand_pass = baseline >= 1.0, candidate >= 1.0
        pass_to_fail = [ids[i] for i in np.flatnonzero(base_pass & ~cand_pass)]
        fail_to_pass = [ids[i] for i in np.flatnonzero(~base_pass & cand_pass)]
    elif kind in ("judge", "ordinal"):
        test, p_value = "wilcoxon", wilcoxon_signed_rank(baseline, candidate)
    else:
        test, p_value = "bootstrap", boot.p_value
    parsed = Threshold.parse(threshold)
    allowed = parsed.allowed_drop(base_mean)
    drop = -delta
    significant = is_significant(p_value, boot.ci_low, boot.ci_high)
    # A zero threshold cannot be powered for; size for the drop actually seen instead.
    size_for = allowed if allowed > _TOLERANCE else max(drop, 0.0)
    needed = _items_needed(kind, baseline, candidate, size_for) if size_for > _TOLERANCE else None
    outcome = drop_outcome(boot.ci_low, boot.ci_high, p_value, allowed, n, needed)
    verdict: Verdict
    if outcome == "beyond":
        verdict = "regressed"
    elif significant and delta > 0:
        verdict = "improved"
    elif outcome == "within":
        verdict = "no_change"
    else:
        verdict = "inconclusive"
        if boot.ci_low < -allowed - _TOLERANCE:
            # The interval straddles the allowed drop: the items that would narrow it enough.
            needed = _items_to_decide(n, boot.ci_low, boot.ci_high, delta, allowed)
    return MetricComparison(
        metric=metric, kind=kind, n_items=n, baseline_value=base_mean, candidate_value=cand_mean,
        delta=delta, relative_delta=(delta / base_mean) if base_mean != 0 else None,
        ci_low=boot.ci_low, ci_high=boot.ci_high, p_value=p_value, test=test, threshold=str(parsed),
        verdict=verdict, items_needed=needed if verdict == "inconclusive" else None,
        pass_to_fail=pass_to_fail, fail_to_pass=fail_to_pass,
    )


def _items_to_decide(n: int, ci_low: float, ci_high: float, delta: float, allowed: float) -> int | None:
    """Paired items for 80% power to place the interval on one side of the allowed drop.

    The spread of the paired differences is read off the observed interval
    (``sd = half-width * sqrt(n) / z``), and the distance to decide is that of the
    observed delta from the allowed drop: ``n = ((z(0.975) + z(0.8)) * sd / distance)**2``.
    None when the delta sits on the threshold itself (no number of items decides it).
    """
    from statistics import NormalDist

    z_alpha, z_power = NormalDist().inv_cdf(1 - ALPHA / 2), NormalDist().inv_cdf(POWER)
    distance = abs(delta + allowed)
    sd = (ci_high - ci_low) / 2 * math.sqrt(n) / z_alpha
    if distance <= _TOLERANCE or sd <= 0:
        return None
    return max(n + 1, min(10**9, math.ceil(((z_alpha + z_power) * sd / distance) ** 2)))


def _items_needed(kind: MetricKind, baseline: np.ndarray, candidate: np.ndarray, drop: float) -> int:
    differences = candidate - baseline
    if kind == "binary":
        discordance = float(np.count_nonzero(differences)) / max(differences.size, 1)
        return mcnemar_sample_size(discordance, drop)
    spread = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    # A drop of `drop` made of whole-unit item changes has at least this spread; two
    # identical runs show none, which would otherwise claim two items are enough.
    floor = math.sqrt(drop * max(1.0 - drop, 0.0)) if drop < 1 else drop
    return paired_mean_sample_size(max(spread, floor), drop, rank_test=kind in ("judge", "ordinal"))


@dataclass(frozen=True)
class MetricArray:
    """One metric of one candidate: the measured items' ids and values, in item order.

    Metrics of task items share one ``ids`` list object (so pairing two candidates
    evaluated on the same items costs one list comparison); benchmark metrics have
    their own ids.
    """

    ids: list[str]
    values: np.ndarray


def metric_arrays(result: CandidateResult) -> dict[str, MetricArray]:
    """Return every metric of a candidate as arrays (equal to ``result.values(metric)``).

    Built in one pass over the items; when every item carries the same metrics (the
    common case) the values come out as one matrix, so 10,000 items × many metrics
    cost milliseconds, not seconds.
    """
    arrays: dict[str, MetricArray] = {}
    items = result.items
    if items:
        ids = [item.item_id for item in items]
        names = tuple(items[0].scores)
        if all(tuple(item.scores) == names for item in items):
            value = operator.attrgetter("value")
            matrix = np.array([list(map(value, item.scores.values())) for item in items],
                              dtype=np.float64).reshape(len(items), len(names))
            arrays = {name: MetricArray(ids, matrix[:, column]) for column, name in enumerate(names)}
        else:
            columns: dict[str, np.ndarray] = {}
            for row, item in enumerate(items):
                for name, score in item.scores.items():
                    if name not in columns:
                        columns[name] = np.full(len(items), np.nan)
                    columns[name][row] = score.value
            for name, column in columns.items():
                present = ~np.isnan(column)
                if present.all():
                    arrays[name] = MetricArray(ids, column)
                else:
                    kept = np.flatnonzero(present)
                    arrays[name] = MetricArray([ids[i] for i in kept], column[kept])
    for name, per_item in result.item_values.items():
        arrays[name] = MetricArray(list(per_item), np.fromiter(per_item.values(), dtype=np.float64,
                                                               count=len(per_item)))
    return arrays


def metric_values(result: CandidateResult) -> dict[str, dict[str, float]]:
    """Return metric -> item id -> value for every metric of a candidate, in item order."""
    return {name: dict(zip(array.ids, array.values.tolist(), strict=True))
            for name, array in metric_arrays(result).items()}


def _pair(base: MetricArray, cand: MetricArray, same_ids: dict[tuple[int, int], bool]
          ) -> tuple[list[str], np.ndarray, np.ndarray]:
    # Same items in the same order (every metric of a run's task items): nothing to align.
    key = (id(base.ids), id(cand.ids))
    if key not in same_ids:
        same_ids[key] = base.ids is cand.ids or base.ids == cand.ids
    if same_ids[key]:
        return base.ids, base.values, cand.values
    position = {item_id: index for index, item_id in enumerate(cand.ids)}
    pairs = [(index, position[item_id]) for index, item_id in enumerate(base.ids) if item_id in position]
    if not pairs:
        return [], np.zeros(0), np.zeros(0)
    base_index, cand_index = (np.array(side) for side in zip(*pairs, strict=True))
    return [base.ids[i] for i in base_index], base.values[base_index], cand.values[cand_index]


def compare_pair(
    baseline: CandidateResult,
    candidate: CandidateResult,
    policy: ThresholdPolicy,
    seed: int = 0,
    metrics: Iterable[str] | None = None,
    *,
    baseline_arrays: Mapping[str, MetricArray] | None = None,
    continuous: Container[str] = (),
    kinds: Mapping[str, str] | None = None,
) -> CandidateComparison:
    """Compare every metric both candidates measured (or only ``metrics``).

    Items are paired by id; an item one side lacks (a failed judgment) is left out of
    that metric's comparison. ``baseline_arrays`` reuses the baseline's
    :func:`metric_arrays` when one baseline is compared with many candidates.
    ``continuous`` names metrics compared as continuous whatever their values (per-item
    rates over repeated samples, :func:`evalkit.sampling.is_rate_metric`); ``kinds``
    gives the kind each check declared for its metrics (:func:`declared_kinds`).
    """
    base_table = baseline_arrays if baseline_arrays is not None else metric_arrays(baseline)
    cand_table = metric_arrays(candidate)
    wanted = list(metrics) if metrics is not None else list(base_table)
    comparison = CandidateComparison(candidate=candidate.name, baseline=baseline.name)
    same_ids: dict[tuple[int, int], bool] = {}
    for metric in wanted:
        if metric not in base_table or metric not in cand_table:
            continue
        ids, base, cand = _pair(base_table[metric], cand_table[metric], same_ids)
        if not ids:
            continue
        rng = rng_for(seed, baseline.name, candidate.name, metric)
        comparison.metrics[metric] = compare_metric(
            metric, ids, base, cand, policy.threshold_text(metric), rng,
            kind="continuous" if metric in continuous else metric_kind(metric, base, cand, (kinds or {}).get(metric)),
        )
    return comparison


def compare_candidates(
    run: RunResult,
    suite: SuiteConfig | None = None,
    seed: int = 0,
    *,
    baseline: str | None = None,
    candidates: Sequence[str] | None = None,
    policy: ThresholdPolicy | None = None,
) -> Comparison:
    """Compare every candidate of a run with its baseline.

    Args:
        run: the run.
        suite: the suite, for its thresholds (default thresholds when None).
        seed: the bootstrap seed.
        baseline: the baseline candidate; default the run's.
        candidates: compare only these; default every evaluated candidate.
        policy: thresholds to use instead of the suite's.

    Raises:
        ConfigError: a named candidate is not in the run.
    """
    policy = policy or ThresholdPolicy.from_suite(suite)
    base_name = baseline or run.baseline
    comparison = Comparison(baseline=base_name, baseline_run_id=run.run_id, candidate_run_id=run.run_id,
                            seed=seed)
    if baseline is None and all(c.name != base_name for c in run.candidates):
        # A run of some candidates only (`--candidate lora`) may leave the baseline out.
        comparison.notes.append(f"baseline '{base_name}' was not run; nothing compared")
        return comparison
    base = _candidate(run, base_name)
    if base.status != "ok":
        comparison.notes.append(f"baseline '{base_name}' was skipped ({base.message}); nothing compared")
        return comparison
    names = list(candidates) if candidates else [c.name for c in run.candidates if c.name != base_name]
    base_arrays = metric_arrays(base)
    for name in names:
        other = _candidate(run, name)
        if other.status != "ok":
            comparison.notes.append(f"candidate '{name}' was skipped; not compared")
            continue
        comparison.candidates[name] = compare_pair(base, other, policy, seed, baseline_arrays=base_arrays,
                                                   continuous=_rate_metrics(run), kinds=declared_kinds(run))
    return comparison


def compare_runs(
    baseline_run: RunResult,
    candidate_run: RunResult,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    policy: ThresholdPolicy | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare the candidates of ``candidate_run`` with those of ``baseline_run``.

    By default each candidate is compared with the candidate of the same name in the
    baseline run (last week's ``lora`` against today's). ``baseline`` and ``candidate``
    pick one pair instead; either defaults to the other's name.

    Raises:
        ConfigError: a named candidate is missing, or the runs share no candidate.
    """
    policy = policy or ThresholdPolicy()
    pairs: list[tuple[str, str]]
    if baseline or candidate:
        base_name = baseline or candidate
        cand_name = candidate or baseline
        assert base_name is not None and cand_name is not None
        pairs = [(base_name, cand_name)]
    else:
        baseline_names = {c.name for c in baseline_run.candidates if c.status == "ok"}
        pairs = [(c.name, c.name) for c in candidate_run.candidates
                 if c.status == "ok" and c.name in baseline_names]
        if not pairs:
            raise ConfigError(
                f"runs {baseline_run.run_id} and {candidate_run.run_id} share no evaluated candidate; "
                "pick one of each with --baseline NAME --candidate NAME"
            )
    comparison = Comparison(baseline=pairs[0][0] if len(pairs) == 1 else "",
                            baseline_run_id=baseline_run.run_id, candidate_run_id=candidate_run.run_id,
                            seed=seed)
    if baseline_run.dataset_hash and baseline_run.dataset_hash != candidate_run.dataset_hash:
        comparison.notes.append("the two runs used different dataset files; items are paired by id "
                                "and only ids present in both are compared")
    for base_name, cand_name in pairs:
        base, other = _candidate(baseline_run, base_name), _candidate(candidate_run, cand_name)
        for result, run in ((base, baseline_run), (other, candidate_run)):
            if result.status != "ok":
                raise ConfigError(f"candidate '{result.name}' was skipped in run {run.run_id}; "
                                  "pick an evaluated one")
        comparison.candidates[cand_name] = compare_pair(base, other, policy, seed,
                                                        continuous=_rate_metrics(baseline_run, candidate_run),
                                                        kinds=declared_kinds(baseline_run, candidate_run))
    return comparison


def declared_kinds(*runs: RunResult) -> dict[str, str]:
    """Return metric -> the kind its check declared, from the runs' ``metric_kinds`` sections.

    The later run's declaration wins when two runs disagree (a check changed its kind).
    """
    kinds: dict[str, str] = {}
    for run in runs:
        for metric, declaration in (run.sections.get("metric_kinds") or {}).items():
            if isinstance(declaration, Mapping) and isinstance(declaration.get("kind"), str):
                kinds[metric] = declaration["kind"]
    return kinds


def _rate_metrics(*runs: RunResult) -> set[str]:
    """Return the metrics that are per-item rates over repeated samples in any of ``runs``."""
    names = {metric for run in runs for c in run.candidates for metric in c.metric_names()}
    return {metric for metric in names if any(is_rate_metric(metric, run.sections) for run in runs)}


def _candidate(run: RunResult, name: str) -> CandidateResult:
    try:
        return run.candidate(name)
    except KeyError:
        names = ", ".join(c.name for c in run.candidates)
        raise ConfigError(f"run {run.run_id} has no candidate '{name}'; it has: {names}") from None


@dataclass
class MetricTrend:
    """One candidate's metric across a suite's stored runs, oldest first.

    Attributes:
        candidate: the candidate's name.
        metric: the metric's name.
        run_ids: the runs that measured it.
        values: its mean in each of those runs.
        threshold: the tolerated drop.
        drift_from_first: latest - first.
        drift_from_best: latest - best (0 or negative).
        best_run_id: the run with the highest value (the earliest on ties).
        drifted_from_first: the latest run dropped beyond the threshold from the first.
        drifted_from_best: the latest run dropped beyond the threshold from the best.
    """

    candidate: str
    metric: str
    run_ids: list[str]
    values: list[float]
    threshold: str
    drift_from_first: float
    drift_from_best: float
    best_run_id: str
    drifted_from_first: bool
    drifted_from_best: bool

    @property
    def drifted(self) -> bool:
        """True when the latest run dropped beyond the threshold from the first or the best."""
        return self.drifted_from_first or self.drifted_from_best


def metric_trends(
    points: Iterable[tuple[str, str, str, float]], policy: ThresholdPolicy | None = None
) -> list[MetricTrend]:
    """Turn per-run metric means into trends, flagging drift against the first and best run.

    Every metric is read as higher-is-better (true of every evalkit metric). Drift is
    judged on the means alone; ``evalkit compare FIRST LATEST`` runs the paired tests.

    Args:
        points: (run id, candidate, metric, value), in run order, oldest first.
        policy: the thresholds (those of the latest run, typically).
    """
    policy = policy or ThresholdPolicy()
    series: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
    for run_id, candidate, metric, value in points:
        run_ids, values = series.setdefault((candidate, metric), ([], []))
        run_ids.append(run_id)
        values.append(float(value))
    trends = []
    for (candidate, metric), (run_ids, values) in series.items():
        threshold = policy.threshold(metric)
        best_index = int(np.argmax(values))
        first, best, latest = values[0], values[best_index], values[-1]
        trends.append(MetricTrend(
            candidate=candidate, metric=metric, run_ids=run_ids, values=values, threshold=str(threshold),
            drift_from_first=latest - first, drift_from_best=latest - best, best_run_id=run_ids[best_index],
            drifted_from_first=first - latest > threshold.allowed_drop(first) + _TOLERANCE,
            drifted_from_best=best - latest > threshold.allowed_drop(best) + _TOLERANCE,
        ))
    return trends
