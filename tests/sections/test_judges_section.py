"""The judges section's schema against what the stage writes, damaged sections and older runs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import DataError
from evalkit.judges.section import JudgeEntry, JudgesSection, failures_exceeded, judge_metric_not_counted
from evalkit.judges.view import judges_view
from evalkit.record.results import read_section
from evalkit.record.sections import parse_section
from evalkit.testing.tiny_model import JUDGE_RUBRIC, synthetic_run
from tests.judges.scripted_judge import scripted_judge

REPO = Path(__file__).resolve().parents[2]
RUBRIC = str(REPO / "rubrics/classifier_quality.yaml")


@pytest.fixture(scope="module", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The judgment cache goes to a private home, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVALKIT_HOME", str(tmp_path_factory.mktemp("evalkit-home")))
        yield


def as_stored(section: JudgesSection) -> dict[str, Any]:
    """Return a parsed section in its JSON form again, keeping only the keys it was read with."""
    return {key: entry.model_dump(mode="json", exclude_unset=True) for key, entry in section.items()}


@pytest.fixture(scope="module")
def stage_section(isolated_home: None, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
                  ) -> dict[str, Any]:
    """What the real stage writes: a pointwise judge with repeats and labels, and a pairwise one, over HTTP."""
    import yaml

    from evalkit.api import run_suite
    from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

    root = tmp_path_factory.mktemp("judged-suite")
    write_jsonl(root / "eval.jsonl", CLASSIFIER_ITEMS[:3])
    with scripted_judge("first_listed") as judge:
        endpoint = {"provider": "openai", "model": "scripted", "base_url": judge.url, "logprobs": False}
        suite = {
            "name": "sections", "dataset": {"path": "eval.jsonl"},
            "prompt": {"user": "{{ instruction }}\n\n{{ input }}"}, "generation": {"max_new_tokens": 4},
            "candidates": [{"name": "base", "model": str(tiny_model_dir)},
                           {"name": "terse", "model": str(tiny_model_dir), "prompt": {"system": "Be terse."}}],
            "judges": [{"rubric": RUBRIC, "name": "sc", "repeats": 3, "min_consistency": 0.9, "min_kappa": 0.3,
                        "judge": endpoint},
                       {"rubric": RUBRIC, "name": "pw", "mode": "pairwise", "judge": endpoint}],
        }
        (root / "suite.yaml").write_text(yaml.safe_dump(suite))
        run = run_suite(root / "suite.yaml", write=False)
    return json.loads(json.dumps(run.sections["judges"]))  # what summary.json holds


def test_the_stage_writes_exactly_the_schema(stage_section: dict[str, Any]) -> None:
    parsed = parse_section(JudgesSection, stage_section, "stage")
    # Every key the stage writes is described: read back and dumped, nothing is lost or added.
    assert as_stored(parsed) == stage_section
    pointwise, pairwise = parsed["sc"], parsed["pw"]
    assert pointwise.consistency is not None and pointwise.consistency.kind == "self"
    assert pointwise.consistency.repeats == 3 and pointwise.consistency.first_position_rate is None
    assert pointwise.pairwise is None and "pairwise" not in stage_section["sc"]
    assert pointwise.calibration is not None and pointwise.calibration.agreement, "the rubric's labels were used"
    assert pointwise.judge is not None and pointwise.judge.base_url is not None
    assert pointwise.usage is not None and pointwise.usage.requests > 0
    assert pointwise.tally is not None and pointwise.tally.tasks == 3 * 3 * 2
    assert len(pointwise.transcripts["base"]) == 3 and pointwise.per_candidate["base"]["format"].n == 3
    assert pairwise.mode == "pairwise" and set(pairwise.pairwise or {}) == {"terse"}
    assert pairwise.consistency is not None and pairwise.consistency.kind == "position"
    assert pairwise.consistency.mean_std is None and pairwise.calibration is not None
    assert set(pairwise.per_candidate["terse"]) == {"preference"}


def test_the_synthetic_run_of_the_report_tests_reads() -> None:
    section = parse_section(JudgesSection, synthetic_run(n_items=10).sections["judges"], "synthetic")
    entry = section[JUDGE_RUBRIC]
    assert entry.rubric is None and entry.tally is None and entry.failures == {}  # the fake writes neither
    assert entry.calibration is not None and entry.calibration.kappa["format"] == 0.62


def test_a_damaged_nested_field_names_its_path(stage_section: dict[str, Any]) -> None:
    damaged = copy.deepcopy(stage_section)
    damaged["pw"]["consistency"]["rate"]["preference"] = "most"
    with pytest.raises(DataError, match=r"summary\.json sections\.judges: field 'pw\.consistency\.rate\.preference'"):
        parse_section(JudgesSection, damaged, "summary.json sections.judges")
    damaged = copy.deepcopy(stage_section)
    damaged["sc"]["transcripts"]["base"] = {"item": [{"label": "repeat 1 of 3", "reply": "{}"}]}
    with pytest.raises(DataError, match=r"field 'sc\.transcripts\.base\.item\.0\.messages': field required"):
        parse_section(JudgesSection, damaged, "run")


def test_the_gates_and_the_report_refuse_a_damaged_entry_naming_the_field(stage_section: dict[str, Any]) -> None:
    damaged = copy.deepcopy(stage_section)
    damaged["sc"]["failures"]["base"]["exceeded"] = "perhaps"
    # The gates read the section typed (read_section): the read names the run, the section and the field.
    with pytest.raises(DataError, match=r"run r1: sections\.judges: field 'sc\.failures\.base\.exceeded'"):
        read_section({"judges": damaged}, "judges", "run r1")
    damaged["sc"]["failures"]["base"]["exceeded"] = True
    damaged["pw"]["calibration"]["kappa"] = {"format": "high"}  # pw sets no min_consistency: calibration decides
    with pytest.raises(DataError, match=r"sections\.judges: field 'pw\.calibration\.kappa\.format'"):
        read_section({"judges": damaged}, "judges")
    run = synthetic_run(n_items=10)
    run.sections["judges"][JUDGE_RUBRIC]["per_candidate"]["lora"]["format"]["n"] = "ten"
    with pytest.raises(DataError, match=rf"sections\.judges: field '{JUDGE_RUBRIC}\.per_candidate\.lora\.format\.n'"):
        judges_view(run)


def test_an_older_entry_without_the_later_keys_reads_and_is_gated_as_before() -> None:
    # Before failure counts, transcripts, tallies and consistency audits: the judge, its means and calibration.
    older = {"judge": {"provider": "local", "model": "smollm2-135m-instruct"}, "mode": "pointwise",
             "calibration": {"kappa": {"format": 0.1}, "calibrated": False, "min_kappa": 0.4},
             "errors": {"base": 0, "lora": 2},
             "per_candidate": {"lora": {"format": {"mean": 3.5, "std": 0.5, "n": 10}}}}
    entry = JudgeEntry.model_validate(older)
    assert entry.per_candidate["lora"]["format"].n_failed == 0 and entry.failures == {} and entry.transcripts == {}
    assert entry.calibration is not None and entry.calibration.n == 0 and entry.calibration.agreement is None
    judges = read_section({"judges": {"q": older}}, "judges")
    assert failures_exceeded(judges, "judge.q.format", ["lora", "base"]) is None
    why = judge_metric_not_counted(judges, "judge.q.format")
    assert why is not None and "kappa 0.100 for 'format' < min_kappa 0.400" in why
    run = synthetic_run(n_items=10, candidates=("base", "lora"), with_comparison=False)
    run.sections["judges"] = {"q": older}
    (view,) = judges_view(run)
    assert view.judge == "local: smollm2-135m-instruct" and view.calibrated is False
    assert view.per_candidate == {"lora": {"format": "3.50 ± 0.50 (n=10)"}} and view.errors == {"lora": 2}
    # The smallest entry the bars' tests write: only a calibration, the judge unnamed.
    run.sections["judges"] = {"q": {"calibration": {"kappa": {"format": 0.0}, "calibrated": False}}}
    (view,) = judges_view(run)
    assert (view.judge, view.mode, view.calibration) == ("?: ?", "pointwise", "NOT calibrated")


def test_a_candidate_without_a_decided_pair_renders_no_rates() -> None:
    # summarise_pairwise writes None rates when no pair was decided (every judgment failed).
    run = synthetic_run(n_items=10, candidates=("base", "lora"), with_comparison=False)
    run.sections["judges"] = {"pw": {"mode": "pairwise", "pairwise": {"lora": {
        "win_rate": None, "tie_rate": None, "loss_rate": None, "inconsistent_rate": None, "consistency": None,
        "first_position_rate": None, "n": 0}}}}
    (view,) = judges_view(run)
    assert view.pairwise == {"lora": {}}
