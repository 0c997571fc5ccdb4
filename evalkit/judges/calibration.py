"""How far a judge agrees with people: the numbers that make a judge worth trusting.

A labels file is JSONL, one human-scored judgment a line::

    {"id": "fmt-01", "item": {"instruction": "...", "input": "..."},
     "prediction": "...", "reference": "...", "scores": {"format": 5, "accuracy": 4, "style": 5}}

Per criterion, against the human scores:

* weighted Cohen's kappa (quadratic weights over the fixed categories 1..5, equal to
  ``sklearn.metrics.cohen_kappa_score(h, j, labels=[1..5], weights="quadratic")``);
* Spearman's rank correlation (``scipy.stats.spearmanr``), on the judge's unrounded scores;
* exact agreement and within-one agreement;
* self-consistency: the mean standard deviation of the judge's score when the same
  item is judged again (0 for a deterministic judge such as the local one).

A probability-weighted judge score (3.7) is rounded to the nearest level for kappa and
the agreement rates, and kept as is for Spearman.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.files.input_files import json_objects, refuse_non_regular_file
from evalkit.judges.clients import Judgment
from evalkit.judges.judging import JudgeRunner, JudgeTally, JudgeTask, count_outcome
from evalkit.judges.rubric import SCALE, Rubric
from evalkit.judges.section import CriterionAgreement


@dataclass(frozen=True)
class LabelledExample:
    """One human-labelled judgment.

    Attributes:
        id: the example's id (default its line number).
        item: the item's fields.
        prediction: the output that was judged.
        reference: the reference answer.
        scores: criterion -> human score 1..5.
        line: the line it came from.
    """

    id: str
    item: dict[str, Any]
    prediction: str
    reference: str
    scores: dict[str, int]
    line: int


def load_labels(path: Path, rubric: Rubric) -> list[LabelledExample]:
    """Read a labels file and check it against the rubric.

    Raises:
        DataError: missing file, bad JSON, or a line without every criterion scored 1..5;
            the message names the file and line.
    """
    refuse_non_regular_file(path, "labels file")
    if not path.is_file():
        raise DataError(f"{path}: labels file not found; check the path")
    examples: list[LabelledExample] = []
    for number, row in json_objects(path, "fix the line"):
        where = f"{path}:{number}"
        if not isinstance(row.get("item"), dict) or "prediction" not in row:
            raise DataError(f"{where}: each line needs 'item' (an object), 'prediction' and 'scores'")
        scores = row.get("scores")
        if not isinstance(scores, dict):
            raise DataError(f"{where}: 'scores' must map each criterion to a score 1..5")
        for name in rubric.criterion_names:
            value = scores.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value not in SCALE:
                raise DataError(f"{where}: scores.{name} must be an integer 1..5, got {value!r}")
        examples.append(LabelledExample(
            id=str(row.get("id", number)), item=row["item"], prediction=str(row["prediction"]),
            reference=str(row.get("reference", "")), scores={n: int(scores[n]) for n in rubric.criterion_names},
            line=number,
        ))
    if not examples:
        raise DataError(f"{path}: no labelled examples; add JSONL lines (see docs/judges.md)")
    return examples


def to_level(score: float) -> int:
    """Round a (possibly weighted) score to the nearest level 1..5, halves up."""
    return int(min(SCALE[-1], max(SCALE[0], math.floor(score + 0.5))))


def weighted_kappa(human: Sequence[int], judge: Sequence[int], weights: str = "quadratic") -> float | None:
    """Cohen's kappa with linear or quadratic disagreement weights over the levels 1..5.

    Returns:
        Kappa, or None when it is undefined (both raters used one and the same level).
    """
    k = len(SCALE)
    observed = np.zeros((k, k))
    for h, j in zip(human, judge, strict=True):
        observed[SCALE.index(h), SCALE.index(j)] += 1
    n = observed.sum()
    if n == 0:
        return None
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    weight = distance**2 if weights == "quadratic" else distance
    denominator = float((weight * expected).sum())
    if denominator == 0:
        return None
    return 1.0 - float((weight * observed).sum()) / denominator


def spearman(human: Sequence[float], judge: Sequence[float]) -> float | None:
    """Spearman's rho, or None when undefined (fewer than 2 items, or a constant rater)."""
    if len(human) < 2 or len(set(human)) < 2 or len(set(judge)) < 2:
        return None
    from scipy.stats import spearmanr

    value = float(spearmanr(human, judge).statistic)
    return None if math.isnan(value) else value


def agreement(
    human: Sequence[int], judge: Sequence[float], repeats: Sequence[Sequence[float]] = ()
) -> CriterionAgreement:
    """Compute every agreement statistic for one criterion.

    Args:
        human: human scores.
        judge: the judge's scores on the same examples (weighted means allowed).
        repeats: per example, the scores of every time it was judged (for self-consistency).
    """
    levels = [to_level(s) for s in judge]
    n = len(human)
    spread = [statistics.pstdev(r) for r in repeats if len(r) > 1]
    return CriterionAgreement(
        n=n,
        kappa=weighted_kappa(human, levels),
        spearman=spearman([float(h) for h in human], list(judge)),
        exact=sum(h == j for h, j in zip(human, levels, strict=True)) / n if n else None,
        within_one=sum(abs(h - j) <= 1 for h, j in zip(human, levels, strict=True)) / n if n else None,
        self_consistency=sum(spread) / len(spread) if spread else None,
    )


def is_calibrated(kappas: dict[str, float], criteria: Sequence[str], min_kappa: float | None) -> bool:
    """True when every criterion has a kappa of at least ``min_kappa`` (always, when none is required)."""
    if min_kappa is None:
        return True
    return bool(criteria) and all(name in kappas and kappas[name] >= min_kappa for name in criteria)


@dataclass(frozen=True)
class CalibrationResult:
    """A judge's agreement with a labels file, per criterion.

    Attributes:
        criteria: criterion -> agreement statistics.
        n: labelled examples.
        errors: examples the judge failed to judge (left out of the statistics).
        error_examples: a few of the judge errors' messages.
    """

    criteria: dict[str, CriterionAgreement]
    n: int
    errors: int
    error_examples: list[str]

    def kappas(self) -> dict[str, float]:
        """Return criterion -> kappa for the criteria where kappa is defined."""
        return {name: a.kappa for name, a in self.criteria.items() if a.kappa is not None}


def calibrate(examples: Sequence[LabelledExample], runner: JudgeRunner, repeats: int = 1,
              on_done: Callable[[int], None] | None = None) -> CalibrationResult:
    """Judge every labelled example (``repeats`` times) and compare with the human scores.

    Args:
        examples: the labelled examples.
        runner: the judge, with its retries and cache.
        repeats: how often each example is judged; above 1 measures self-consistency.
        on_done: progress callback, called per judgment.

    Raises:
        JudgeError: the judge cannot work at all.
    """
    from evalkit.judges.prompt import pointwise_messages

    rubric = runner.rubric
    tasks = []
    for example in examples:
        messages = pointwise_messages(rubric, example.item, example.prediction, example.reference,
                                      f"labels line {example.line}")
        for repeat in range(max(1, repeats)):
            key = (example.item, example.reference, example.prediction, repeat)
            tasks.append(JudgeTask("pointwise", messages, key))
    outcomes = runner.run(tasks, on_done)
    per_example = [outcomes[i * max(1, repeats) : (i + 1) * max(1, repeats)] for i in range(len(examples))]
    tally = JudgeTally()
    for outcome in outcomes:
        count_outcome(tally, outcome)
    criteria: dict[str, CriterionAgreement] = {}
    judged = [(ex, [o.judgment for o in outs if isinstance(o.judgment, Judgment)])
              for ex, outs in zip(examples, per_example, strict=True)]
    judged = [(ex, js) for ex, js in judged if js]
    for name in rubric.criterion_names:
        human = [ex.scores[name] for ex, _ in judged]
        first = [js[0].scores[name] for _, js in judged]
        repeated = [[j.scores[name] for j in js] for _, js in judged] if repeats > 1 else []
        criteria[name] = agreement(human, first, repeated)
    failed = len(examples) - len(judged)
    return CalibrationResult(criteria=criteria, n=len(examples), errors=failed, error_examples=tally.error_examples)
