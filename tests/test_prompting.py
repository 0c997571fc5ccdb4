from __future__ import annotations

import json

import pytest

from evalkit.config import CandidateConfig, PromptOverride, SuiteConfig
from evalkit.data.items import Item
from evalkit.errors import DataError
from evalkit.prompting import PromptTemplate, prompt_for_candidate, render_template


def suite(**prompt: object) -> SuiteConfig:
    return SuiteConfig.model_validate({
        "name": "s", "dataset": {"path": "e.jsonl", "train_path": "t.jsonl"}, "prompt": prompt,
        "candidates": [{"name": "base", "model": "m"}],
    })


def items(prefix: str, count: int) -> list[Item]:
    return [Item(id=str(n), fields={"input": f"{prefix}{n}", "output": f"out{n}"}, line=n + 1) for n in range(count)]


def test_messages_system_user_and_expected() -> None:
    template = PromptTemplate(system="Be {{ tone }}.", user="Q: {{ input }}\n", expected="{{ output }}")
    fields = {"tone": "brief", "input": "hi", "output": "yo"}
    assert template.messages(fields) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: hi"},
    ]
    assert template.expected_output(fields) == "yo"


def test_few_shot_precede_the_item_and_never_come_from_eval() -> None:
    train = items("train", 10)
    evaluation = items("eval", 3)
    # A training row identical to an eval row must never be shown as an example.
    train.append(Item(id="dup", fields=dict(evaluation[0].fields), line=99))
    config = suite(user="{{ input }}", few_shot=3)
    candidate = CandidateConfig(name="fs", model="m")
    template = prompt_for_candidate(config, candidate, train, evaluation)
    assert len(template.shots) == 3
    eval_dumps = {json.dumps(i.fields, sort_keys=True) for i in evaluation}
    assert not any(json.dumps(s, sort_keys=True) in eval_dumps for s in template.shots)
    messages = template.messages(evaluation[1].fields)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"] == "eval1"
    # Deterministic: the same examples every time.
    assert prompt_for_candidate(config, candidate, train, evaluation).shots == template.shots


def test_candidate_override_replaces_prompt_parts() -> None:
    config = suite(system="S", user="{{ input }}")
    candidate = CandidateConfig(name="v", model="m", prompt=PromptOverride(system="Other"))
    template = prompt_for_candidate(config, candidate)
    assert template.system == "Other" and template.user == "{{ input }}" and template.shots == ()


def test_missing_field_names_the_item() -> None:
    with pytest.raises(DataError, match=r"eval.jsonl:7: the prompt template needs 'input' is undefined"):
        render_template("{{ input }}", {}, "eval.jsonl:7")


def test_templates_are_sandboxed() -> None:
    with pytest.raises(DataError, match="failed to render"):
        render_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, "x")
