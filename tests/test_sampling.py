"""Repeated sampling: pass@k maths, seeded determinism on the HF backend, flaky items."""

from __future__ import annotations

import itertools
from math import comb
from pathlib import Path

import pytest

from evalkit.api import run_suite
from evalkit.checks import Score
from evalkit.checks.sampling import pass_at_k, pass_hat_k, sample_seed, score_samples
from evalkit.comparison.compare import compare_candidates
from evalkit.errors import ConfigError
from evalkit.record.results import ItemResult
from evalkit.suite.config import GenerationConfig


def _brute_force(n: int, c: int, k: int, every: bool) -> float:
    # The chance that k samples drawn without replacement from n (c passing) all/any pass.
    outcomes = [1] * c + [0] * (n - c)
    draws = list(itertools.combinations(range(n), k))
    hits = sum((all if every else any)(outcomes[i] for i in draw) for draw in draws)
    return hits / len(draws)


@pytest.mark.parametrize("n, c, k", [(5, 0, 1), (5, 2, 1), (5, 2, 3), (5, 5, 5), (10, 3, 4), (6, 5, 2)])
def test_estimators_equal_drawing_k_of_n(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k, every=False))
    assert pass_hat_k(n, c, k) == pytest.approx(_brute_force(n, c, k, every=True))
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert pass_hat_k(n, c, k) == pytest.approx(comb(c, k) / comb(n, k))


def test_estimators_refuse_impossible_counts() -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)


def test_seeds_differ_per_item_and_sample_and_repeat() -> None:
    seeds = {sample_seed(7, item, sample) for item in ("1", "2") for sample in range(5)}
    assert len(seeds) == 10 and sample_seed(7, "1", 0) == sample_seed(7, "1", 0)
    assert sample_seed(8, "1", 0) != sample_seed(7, "1", 0)


def test_flaky_items_found_in_a_planted_case() -> None:
    def exact(prediction: str, reference: str) -> dict[str, Score]:
        return {"exact_match": Score(float(prediction == reference), "" if prediction == reference else "differs")}

    settings = GenerationConfig(samples=4, temperature=0.7, pass_at=[2, 4])
    items = [ItemResult(item_id=str(n), expected="yes", prediction="") for n in range(3)]
    outputs = [["yes"] * 4, ["no"] * 4, ["yes", "no", "yes", "no"]]  # steady pass, steady fail, flaky
    scored = score_samples([exact], items, outputs, settings)
    assert [f["item_id"] for f in scored["flaky"]] == ["2"]
    assert scored["flaky"][0]["outputs"] == ["yes", "no", "yes", "no"]
    flaky = items[2].scores
    assert flaky["exact_match"].value == 0.5
    assert flaky["exact_match.pass@2"].value == pytest.approx(1 - comb(2, 2) / comb(4, 2))
    assert flaky["exact_match.pass^4"].value == 0.0
    assert items[0].scores["exact_match.pass^4"].value == 1.0 and items[1].scores["exact_match.pass@4"].value == 0.0


def test_samples_need_a_temperature() -> None:
    with pytest.raises(ValueError, match="needs temperature > 0"):
        GenerationConfig(samples=3)


def _sampled_suite(make_suite, model: Path, seed: int) -> Path:  # type: ignore[no-untyped-def]
    # A regex matching some outputs of the random model but not others makes items flaky.
    return make_suite(  # type: ignore[no-any-return]
        generation={"max_new_tokens": 8, "batch_size": 3, "samples": 5, "temperature": 0.7, "seed": seed},
        candidates=[{"name": "base", "model": str(model)}, {"name": "other", "model": str(model),
                                                             "prompt": {"system": "Be brief."}}],
        checks=["exact_match", "json_valid", {"regex": {"pattern": "[aeiou]{1}", "name": "vowel"}}],
    )


def test_same_seed_same_outputs_on_hf(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    path = _sampled_suite(make_suite, tiny_model_dir, seed=11)
    data = yaml.safe_load(path.read_text())
    first = run_suite(path, write=False, cache=False)
    second = run_suite(path, write=False, cache=False)
    for a, b in zip(first.candidates, second.candidates, strict=True):
        assert [i.prediction for i in a.items] == [i.prediction for i in b.items]
        assert [i.scores for i in a.items] == [i.scores for i in b.items]
    assert first.sections["sampling"] == second.sections["sampling"]
    sampling = first.sections["sampling"]
    assert sampling["samples"] == 5 and sampling["seed"] == 11 and sampling["pass_at"] == [5]
    item = first.candidate("base").items[0]
    assert {"vowel", "vowel.pass@5", "vowel.pass^5", "exact_match.pass@5"} <= set(item.scores)
    # Flaky items are exactly those whose pass rate is strictly between 0 and 1.
    for candidate in first.candidates:
        flaky = {f["item_id"] for f in sampling["flaky"][candidate.name]}
        assert flaky == {i.item_id for i in candidate.items if 0 < i.scores["vowel"].value < 1}
        assert all(len(f["outputs"]) == 5 for f in sampling["flaky"][candidate.name])
    assert any(sampling["flaky"].values()), "the random model at temperature 0.7 should make some item flaky"
    # Rates are continuous metrics: the comparison uses the bootstrap, not McNemar.
    comparison = compare_candidates(first)
    assert comparison.candidates["other"].metrics["vowel"].test == "bootstrap"
    assert comparison.candidates["other"].metrics["exact_match"].test == "bootstrap"

    data["generation"]["seed"] = 12
    path.write_text(yaml.safe_dump(data))
    other_seed = run_suite(path, write=False, cache=False)
    assert ([i.prediction for i in other_seed.candidate("base").items]
            != [i.prediction for i in first.candidate("base").items])


def test_constrain_needs_a_schema_check(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from evalkit.suite.config import load_suite

    path = make_suite(checks=["exact_match"], candidates=[{"name": "base", "model": str(tiny_model_dir),
                                                            "constrain": "json_schema"}])
    with pytest.raises(ConfigError, match="no json_schema check"):
        load_suite(path)
