"""The parity section's schema against what run_parity writes, and damaged sections."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import DataError
from evalkit.parity.checks import ParityReport, adapter_effect, compare_outputs
from evalkit.parity.section import ParitySection
from evalkit.record.sections import parse_section


def as_stored(section: ParitySection) -> dict[str, Any]:
    """Return a parsed section in its JSON form again, keeping only the keys it was read with."""
    return section.model_dump(mode="json", exclude_unset=True)


@pytest.fixture(scope="module")
def parity_section(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Any]:
    """What :func:`run_parity` writes for a base, an adapter and a no-op adapter on the tiny model.

    The HF backend also stands in for vLLM (``vllm`` key): vLLM needs its own install and
    a GPU or its CPU build; the real comparison runs in the slow ``tests/test_parity.py``.
    What is checked here is the section's shape, which does not depend on the second engine.
    """
    import torch
    import yaml
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from evalkit.models.hf import HFBackend
    from evalkit.parity.checks import run_parity
    from evalkit.runner import load_inputs
    from evalkit.suite.config import load_suite
    from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

    root = tmp_path_factory.mktemp("parity-suite")
    adapters = {}
    for name, initialised in (("lora", False), ("noop", True)):  # peft's default init changes nothing
        torch.manual_seed(3)
        model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
        config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=initialised)
        get_peft_model(model, config).save_pretrained(str(root / name))
        adapters[name] = str(root / name)
    write_jsonl(root / "eval.jsonl", CLASSIFIER_ITEMS[:3])
    suite = {
        "name": "parity-sections", "dataset": {"path": "eval.jsonl"},
        "prompt": {"user": "{{ instruction }}\n\n{{ input }}"}, "generation": {"max_new_tokens": 6},
        "candidates": [{"name": "base", "model": str(tiny_model_dir)},
                       {"name": "lora", "model": str(tiny_model_dir), "adapter": adapters["lora"]},
                       {"name": "noop", "model": str(tiny_model_dir), "adapter": adapters["noop"]}],
    }
    (root / "suite.yaml").write_text(yaml.safe_dump(suite))
    backend = HFBackend(device=torch.device("cpu"))
    try:
        report = run_parity(load_inputs(load_suite(root / "suite.yaml")), backends={"hf": backend, "vllm": backend})
    finally:
        backend.close()
    return json.loads(json.dumps(report.model_dump(mode="json")))  # what summary.json holds


def test_run_parity_writes_exactly_the_schema(parity_section: dict[str, Any]) -> None:
    parsed = parse_section(ParitySection, parity_section, "parity")
    # Every key run_parity writes is described: read back and dumped, nothing is lost or added.
    assert as_stored(parsed) == parity_section
    assert parsed.n_items == 3 and set(parsed.backends) == {"base", "lora", "noop"}
    assert all(c.agreement_rate == 1.0 and c.divergences == [] for c in parsed.backends.values())
    assert parsed.adapters["noop"].no_op and parsed.adapters["noop"].changed == {"hf": 0, "vllm": 0}
    assert not parsed.adapters["lora"].no_op and parsed.adapters["lora"].changed["hf"] > 0
    assert parsed.merged == {} and len(parsed.problems) == 1 and "'noop'" in parsed.problems[0]


def test_a_report_with_divergences_round_trips_through_the_schema() -> None:
    report = ParityReport(n_items=2, min_agreement=0.9, backends={}, merged={}, adapters={})
    report.backends["lora"] = compare_outputs(["1", "2"], ["a b", "c"], ["a x", "c"], str.split)
    report.merged["merged"] = compare_outputs(["1"], ["p q"], ["p"], str.split, names=("peft_adapter", "merged"))
    report.adapters["lora"] = adapter_effect(2, {"hf": 1, "vllm": 1})
    stored = json.loads(json.dumps(report.model_dump(mode="json")))
    parsed = parse_section(ParitySection, stored, "parity")
    assert as_stored(parsed) == stored
    (divergence,) = parsed.backends["lora"].divergences
    assert (divergence.item_id, divergence.position, divergence.left_token, divergence.right_token) == \
        ("1", 1, "b", "x")
    assert parsed.merged["merged"].divergences[0].right_token == ""  # past the end of the shorter completion
    assert [p.split(" parity")[0] for p in parsed.problems] == ["HF vs vLLM", "peft adapter vs merged"]


def test_a_damaged_nested_field_names_its_path(parity_section: dict[str, Any]) -> None:
    damaged = copy.deepcopy(parity_section)
    damaged["adapters"]["lora"]["changed"]["vllm"] = "some"
    with pytest.raises(DataError, match=r"summary\.json sections\.parity: field 'adapters\.lora\.changed\.vllm'"):
        parse_section(ParitySection, damaged, "summary.json sections.parity")
    stored = json.loads(json.dumps(ParityReport(n_items=1, min_agreement=0.9, merged={}, adapters={}, backends={
        "base": compare_outputs(["1"], ["a"], ["b"], list)}).model_dump(mode="json")))
    stored["backends"]["base"]["divergences"][0]["position"] = "first"
    with pytest.raises(DataError, match=r"field 'backends\.base\.divergences\.0\.position'"):
        parse_section(ParitySection, stored, "run")
    stored["backends"]["base"]["divergences"][0]["position"] = 0
    parse_section(ParitySection, stored, "run")
    # Every key has been written since parity was added: none is optional, a missing one is damage.
    del stored["backends"]
    with pytest.raises(DataError, match=r"field 'backends': field required"):
        parse_section(ParitySection, stored, "run")
    # The problems are derived from the findings, on writing and on reading alike.
    assert "problems" in ParityReport(n_items=0, min_agreement=0.9, backends={}, merged={}, adapters={}).model_dump()
