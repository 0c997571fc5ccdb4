"""Constrained decoding as a control: outputs forced to the suite's JSON schema (HF, xgrammar)."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.api import run_suite

REPO = Path(__file__).resolve().parents[2]


def test_constrained_candidate_outputs_are_schema_valid(make_suite, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    suite = make_suite(
        generation={"max_new_tokens": 160, "batch_size": 3},
        candidates=[{"name": "base", "model": str(tiny_model_dir)},
                    {"name": "base-constrained", "model": str(tiny_model_dir), "constrain": "json_schema"}],
    )
    run = run_suite(suite, write=False)
    free, constrained = run.candidate("base"), run.candidate("base-constrained")
    # A random model writes no JSON of its own; forced to the schema, every output is valid.
    assert all(i.scores["json_schema"].value == 0.0 for i in free.items)
    assert [i.scores["json_schema"].value for i in constrained.items] == [1.0] * len(constrained.items), [
        i.prediction for i in constrained.items]
    # Keys come in the schema's order, the order the reference answers use.
    order = list(json.loads((REPO / "suites/schemas/classifier.json").read_text())["properties"])
    assert all(list(json.loads(i.prediction)) == order for i in constrained.items)
    # The constraint is part of the generation's identity: cached free outputs are not reused.
    again = run_suite(suite, write=False)
    assert [i.prediction for i in again.candidate("base-constrained").items] == [
        i.prediction for i in constrained.items]
