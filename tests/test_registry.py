"""The one registry type: lazy "module:attr" entries, one duplicate rule, listings for messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from evalkit.registry import DuplicateName, Registry, UnknownName


def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    (tmp_path / f"{name}.py").write_text("def factory():\n    return 'made'\n\n\ndef other():\n    return 'other'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_a_lazy_entry_is_imported_on_first_lookup_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = make_plugin(tmp_path, monkeypatch, "evalkit_test_plugin_lazy")
    registry: Registry[object] = Registry("widget", {"w": f"{module}:factory"})
    assert registry.names() == ["w"] and "w" in registry
    assert module not in sys.modules and not registry.is_loaded("w")
    target = registry.get("w")
    assert module in sys.modules and registry.is_loaded("w")
    assert callable(target) and target() == "made"


def test_unknown_name_lists_what_is_available() -> None:
    registry: Registry[object] = Registry("backend", {"vllm": "x:y", "hf": "x:z"})
    with pytest.raises(UnknownName) as caught:
        registry.get("nope")
    assert str(caught.value) == "unknown backend 'nope'; available: hf, vllm"


def test_same_target_again_is_a_no_op_and_a_different_one_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = make_plugin(tmp_path, monkeypatch, "evalkit_test_plugin_dup")
    registry: Registry[object] = Registry("stage", {"s": f"{module}:factory"})
    registry.register("s", f"{module}:factory")  # the same reference
    loaded = registry.get("s")
    registry.register("s", loaded)  # the object the reference names
    registry.register("s", f"{module}:factory")  # a reference never replaces its loaded object
    assert registry.get("s") is loaded
    with pytest.raises(DuplicateName, match="a stage named 's' is already registered"):
        registry.register("s", f"{module}:other")
    with pytest.raises(DuplicateName):
        registry.register("s", lambda: None)


def test_an_object_registered_before_its_lazy_reference_keeps_one_entry() -> None:
    registry: Registry[object] = Registry("check")
    registry.register("dumps", __import__("json").dumps)
    registry.register("dumps", "json:dumps")
    assert registry.names() == ["dumps"] and registry.is_loaded("dumps")


def test_items_keep_registration_order() -> None:
    registry: Registry[object] = Registry("stage", {"z": "json:dumps", "a": "json:loads"})
    registry.register("m", "json:JSONDecoder")
    assert [name for name, _ in registry.items()] == ["z", "a", "m"]
    assert registry.names() == ["a", "m", "z"]


def test_a_missing_module_is_an_import_error_naming_it() -> None:
    registry: Registry[object] = Registry("backend", {"gone": "evalkit_no_such_module_anywhere:thing"})
    with pytest.raises(ModuleNotFoundError, match="evalkit_no_such_module_anywhere"):
        registry.get("gone")
    assert not registry.is_loaded("gone")


def test_judge_providers_are_validated_against_their_registry() -> None:
    from pydantic import ValidationError

    from evalkit.judges.spec import JudgeClientSpec

    with pytest.raises(ValidationError, match="unknown judge provider 'gemini'; available: anthropic, local, openai"):
        JudgeClientSpec(provider="gemini", model="g")
    assert JudgeClientSpec(provider="openai", model="gpt").provider == "openai"


def test_run_stages_run_in_registration_order_and_import_lazily() -> None:
    from evalkit.stages import STAGES

    assert list(STAGES)[:3] == ["benchmarks", "training", "judges"]
    assert "fleet" in STAGES.names()


def test_a_registered_stage_runs_before_the_comparison_and_its_metric_is_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from evalkit.api import run_suite
    from evalkit.registry import DuplicateName
    from evalkit.stages import STAGES, import_stage_modules, register_stage
    from evalkit.testing import CLASSIFIER_ITEMS, write_jsonl

    monkeypatch.setattr(STAGES, "_entries", dict(STAGES._entries))  # registered for this test only

    def answer_length(inputs: Any, run: Any, backends: Any, progress: Any) -> None:
        for candidate in run.candidates:
            candidate.item_values["answer_length"] = {i.item_id: float(len(i.prediction)) for i in candidate.items}

    register_stage("answer_length", answer_length)
    names = [name for name, _ in import_stage_modules()]
    assert names[-3:] == ["answer_length", "comparison", "bars"]
    with pytest.raises(DuplicateName, match="built in and runs last"):
        register_stage("comparison", answer_length)

    write_jsonl(tmp_path / "eval.jsonl", CLASSIFIER_ITEMS)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "stage-order", "dataset": {"path": "eval.jsonl"},
        "prompt": {"user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [{"name": "base", "model": "m", "backend": "mock", "options": {"default": "x"}},
                       {"name": "echo", "model": "m", "backend": "mock"}],
        "checks": ["exact_match"], "store": str(tmp_path / "store.db"),
    }))
    run = run_suite(suite, write=False)
    compared = run.sections["comparison"]["candidates"]["echo"]["metrics"]
    assert "answer_length" in compared and "exact_match" in compared
