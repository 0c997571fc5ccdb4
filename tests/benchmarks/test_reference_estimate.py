"""The reference script's full-split estimate from a stratified sample."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from evalkit.benchmarks.mmlu_data import load_mmlu

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mmlu_reference.py"


def _estimate():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mmlu_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.full_split_estimate


def test_whole_subjects_give_the_split_accuracy_with_no_sampling_error() -> None:
    sizes = Counter(q.subject for q in load_mmlu())
    # Every subject fully scored, one subject right throughout, the rest wrong.
    big = max(sizes, key=lambda s: sizes[s])
    subjects = {s: (1.0 if s == big else 0.0, n) for s, n in sizes.items()}
    estimate, stderr = _estimate()(subjects)
    assert estimate == pytest.approx(sizes[big] / sum(sizes.values()))
    assert stderr == pytest.approx(0.0)


def test_subjects_weigh_by_their_share_of_the_split_not_equally() -> None:
    sizes = Counter(q.subject for q in load_mmlu())
    big, small = max(sizes, key=lambda s: sizes[s]), min(sizes, key=lambda s: sizes[s])
    subjects = {s: (0.5, 20) for s in sizes}
    subjects[big], subjects[small] = (0.0, 20), (1.0, 20)
    estimate, stderr = _estimate()(subjects)
    total = sum(sizes.values())
    assert estimate == pytest.approx(0.5 - 0.5 * sizes[big] / total + 0.5 * sizes[small] / total)
    # Equal weights (a macro average) would give 0.5; the big subject's zero pulls it down.
    assert sum(a for a, _ in subjects.values()) / len(subjects) == pytest.approx(0.5)
    assert estimate < 0.49
    assert 0 < stderr < 0.05
