"""On the embedded SmolLM2: the constrained base and seeded sampling, on HF and on vLLM.

The constrained candidate must give schema-valid JSON on every demo eval item it is
given (the first ``EVALKIT_CONSTRAINED_ITEMS`` items, default 16 to keep the test a few
minutes on a shared 2-core machine; ``all`` for the 80); seeded sampling must give the
same outputs on two runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from evalkit.api import run_suite
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "suites" / "classifier-constrained.yaml"

pytestmark = pytest.mark.slow
_WANTED = os.environ.get("EVALKIT_CONSTRAINED_ITEMS", "16")
LIMIT = None if _WANTED == "all" else int(_WANTED)


def _suite_copy(tmp_path: Path, **changes: object) -> Path:
    """The shipped suite with its paths made absolute and ``changes`` applied."""
    data = yaml.safe_load(SUITE.read_text())
    data["dataset"] = {k: str((SUITE.parent / v).resolve()) if k.endswith("path") else v
                       for k, v in data["dataset"].items()}
    data["checks"] = [{"json_schema": str(SUITE.parent / c["json_schema"])} if isinstance(c, dict) else c
                      for c in data["checks"]]
    data.update(changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _demo_items() -> int:
    total = sum(1 for line in (REPO / "data/classifier/eval.jsonl").read_text().splitlines() if line.strip())
    return total if LIMIT is None else min(total, LIMIT)


def test_constrained_base_is_schema_valid_on_every_demo_item_hf() -> None:
    suite = load_suite(SUITE)
    suite.dataset.limit = LIMIT
    run = run_suite(suite, candidates=["base-constrained"], write=False, cache=False)
    constrained = run.candidate("base-constrained")
    assert len(constrained.items) == _demo_items()
    invalid = [(i.item_id, i.prediction) for i in constrained.items if i.scores["json_schema"].value != 1.0]
    assert not invalid


def test_seeded_samples_repeat_on_the_embedded_model_hf(tmp_path: Path) -> None:
    path = _suite_copy(tmp_path, generation={"max_new_tokens": 24, "temperature": 0.7, "samples": 3, "seed": 3,
                                             "batch_size": 9},
                       bars=[], candidates=[{"name": "base", "model": "smollm2-135m-instruct"}])
    data = yaml.safe_load(path.read_text())
    data["dataset"]["limit"] = 3
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    first = run_suite(path, write=False, cache=False)
    second = run_suite(path, write=False, cache=False)
    assert [i.prediction for i in first.candidate("base").items] == [i.prediction for i in second.candidate("base").items]
    assert first.sections["sampling"] == second.sections["sampling"]


@pytest.mark.vllm
def test_constrained_base_is_schema_valid_on_every_demo_item_vllm(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    candidates = [{"name": "base-constrained", "model": "smollm2-135m-instruct", "backend": "vllm",
                   "constrain": "json_schema"}]
    path = _suite_copy(tmp_path, candidates=candidates, bars=[], baseline="base-constrained")
    data = yaml.safe_load(path.read_text())
    data["dataset"]["limit"] = LIMIT
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    run = run_suite(path, write=False, cache=False)
    constrained = run.candidate("base-constrained")
    assert len(constrained.items) == _demo_items()
    invalid = [(i.item_id, i.prediction) for i in constrained.items if i.scores["json_schema"].value != 1.0]
    assert not invalid
