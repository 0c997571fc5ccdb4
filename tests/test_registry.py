"""The one registry type: entries registered at their definitions, built-in modules imported on demand, one duplicate
rule, listings for messages."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from evalkit.registry import DuplicateName, Registry, UnknownName


def make_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, **modules: str) -> list[str]:
    """Write ``{prefix}_{name}.py`` modules into an import path of their own; return their names."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []
    for name, code in modules.items():
        module = f"{prefix}_{name}"
        (tmp_path / f"{module}.py").write_text(code.replace("PREFIX", prefix))
        monkeypatch.delitem(sys.modules, module, raising=False)
        names.append(module)
    return names


# A registry of widgets (host) and two modules defining built-in widgets with its decorator.
HOST = "from evalkit.registry import Registry\nWIDGETS = Registry('widget', builtin_modules=('PREFIX_a', 'PREFIX_b'))\n"
MODULE_A = ("from PREFIX_host import WIDGETS\n\n\n@WIDGETS.decorator('wa')\ndef factory():\n    return 'made'\n\n\n"
            "@WIDGETS.decorator('za')\ndef other():\n    return 'other'\n")
MODULE_B = "from PREFIX_host import WIDGETS\n\n\n@WIDGETS.decorator('b')\ndef bee():\n    return 'b'\n"


def widgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str) -> tuple[Registry[Any], str, str]:
    host, a, b = make_modules(tmp_path, monkeypatch, prefix, host=HOST, a=MODULE_A, b=MODULE_B)
    return importlib.import_module(host).WIDGETS, a, b


def test_built_in_modules_are_imported_on_the_first_lookup_only(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    registry, a, b = widgets(tmp_path, monkeypatch, "evalkit_test_reg_lazy")
    assert a not in sys.modules and b not in sys.modules  # the registry names modules, no entries
    target = registry.get("wa")
    assert a in sys.modules and b in sys.modules
    assert callable(target) and target() == "made"
    assert registry.names() == ["b", "wa", "za"] and "za" in registry and "nope" not in registry


def test_unknown_name_lists_what_is_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _, _ = widgets(tmp_path, monkeypatch, "evalkit_test_reg_unknown")
    with pytest.raises(UnknownName) as caught:
        registry.get("nope")
    assert str(caught.value) == "unknown widget 'nope'; available: b, wa, za"


def test_same_target_again_is_a_no_op_and_a_different_one_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, a, _ = widgets(tmp_path, monkeypatch, "evalkit_test_reg_dup")
    loaded = registry.get("wa")
    registry.register("wa", loaded)
    importlib.reload(sys.modules[a])  # the same module imported again registers the same names again
    assert registry.get("wa") is not loaded and registry.get("wa")() == "made"
    with pytest.raises(DuplicateName, match="a widget named 'wa' is already registered .*_a:factory"):
        registry.register("wa", sys.modules[a].other)
    with pytest.raises(DuplicateName):
        registry.register("wa", lambda: None)


def test_a_registration_from_outside_imports_the_built_ins_first_and_is_listed_after_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, a, b = widgets(tmp_path, monkeypatch, "evalkit_test_reg_order")
    importlib.import_module(b)  # imported first on its own: still listed in builtin_modules' order
    assert a not in sys.modules

    def mine() -> str:
        return "mine"

    registry.register("m", mine)
    assert a in sys.modules  # so a clash with a built-in name fails here, in the registering module
    assert [name for name, _ in registry.items()] == ["wa", "za", "b", "m"]
    with pytest.raises(DuplicateName, match="a widget named 'b' is already registered"):
        registry.register("b", mine)
    origins = {o.name: o for o in registry.origins()}
    assert origins["wa"].source == "evalkit" and origins["wa"].defined_at == f"{a}:factory"
    assert origins["m"].source == f"module {mine.__module__} (not from an installed distribution)"


def test_a_missing_built_in_module_is_an_import_error_naming_it_and_is_tried_again() -> None:
    registry: Registry[object] = Registry("backend", builtin_modules=("evalkit_no_such_module_anywhere",))
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError, match="evalkit_no_such_module_anywhere"):
            registry.get("gone")


def test_judge_providers_are_validated_against_their_registry() -> None:
    from pydantic import ValidationError

    from evalkit.judges.section import JudgeClientSpec

    with pytest.raises(ValidationError, match="unknown judge provider 'gemini'; available: anthropic, local, openai"):
        JudgeClientSpec(provider="gemini", model="g")
    assert JudgeClientSpec(provider="openai", model="gpt").provider == "openai"


def test_run_stages_run_in_the_order_of_their_modules() -> None:
    from evalkit.stages import import_stage_modules

    assert [name for name, _ in import_stage_modules()] == [
        "benchmarks", "training", "judges", "parity", "merge_agreement", "slices", "sweep", "fleet", "contamination",
        "comparison", "bars"]


def test_a_registered_stage_runs_before_the_comparison_and_its_metric_is_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from evalkit.api import run_suite
    from evalkit.registry import DuplicateName
    from evalkit.stages import STAGES, import_stage_modules, register_stage
    from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

    STAGES.load_builtins()
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
