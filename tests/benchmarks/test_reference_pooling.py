"""The MMLU reference script pools per-subject results into one full-split figure."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mmlu_reference.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mmlu_reference_pooling", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_accuracy_weighs_each_question_once() -> None:
    acc, stderr, total = _script().combined({"a": (0.5, 100), "b": (0.2, 300)})
    assert total == 400
    assert math.isclose(acc, (50 + 60) / 400)
    assert math.isclose(stderr, math.sqrt(acc * (1 - acc) / 399))
