from __future__ import annotations

import json

import pytest

from evalkit.data.items import Item
from evalkit.errors import DataError
from evalkit.prompting import PromptTemplate, prompt_for_candidate, render_template
from evalkit.suite.config import CandidateConfig, PromptOverride, SuiteConfig


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


def test_ordinary_templates_render_as_before_inside_the_bounds() -> None:
    fields = {"items": [{"a": 1}, {"a": 2}], "input": "Hi", "d": {"k": "v"}, "n": 3}
    rendered = {
        "{{ items|map(attribute='a')|join(',') }}": "1,2",
        "{% for i in range(n) %}{{ loop.index }}{% if not loop.last %},{% endif %}{% endfor %}": "1,2,3",
        "{{ d|tojson }} {{ input|upper }} {{ missing|default('x') }}": '{"k": "v"} HI x',
        "{{ '%-4s|'|format(input) }}{{ '{:>4}'.format(input) }}{{ input|center(6) }}|": "Hi  |  Hi  Hi  |",
        "{{ input * 3 }} {{ [1] + [2] }} {{ 2 ** 10 }}": "HiHiHi [1, 2] 1024",
        "{% set ns = namespace(c=0) %}{% for i in items %}{% set ns.c = ns.c + i.a %}{% endfor %}{{ ns.c }}": "3",
        "{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m(input) }}": "[Hi]",
    }
    for template, expected in rendered.items():
        assert render_template(template, fields, "item") == expected, template


@pytest.mark.parametrize(("template", "reason"), [
    ("{% for i in range(10**9) %}x{% endfor %}", r"range\(1000000000\) has 1,000,000,000 values"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loops ran more than"),
    ("{% set a = range(1000)|list %}{% for i in a %}{% for j in a %}{% endfor %}{% endfor %}", "loops ran more than"),
    ("{{ 'x' * 10**9 }}", r"'\*' would make 1,000,000,000"),
    ("{{ [0] * 10**9 }}", r"'\*' would make 1,000,000,000"),
    ("{{ 2 ** 1000000000 }}", r"'\*\*' would make a number"),
    ("{{ 'x'.ljust(10**9) }}", r"str\.ljust\(1000000000\)"),
    ("{{ '%999999999s'|format(1) }}", "width or precision"),
    ("{{ '{:>999999999}'.format(1) }}", "width or precision"),
    ("{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ d('x', 60) }}", "argument made"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ("{{ (range(1000)|list) * 1000 }}", "output passed 1,000,000 characters"),
])
def test_a_template_that_computes_stops_with_its_name(template: str, reason: str) -> None:
    with pytest.raises(DataError, match=rf"^eval\.jsonl:3: the prompt template \(suite\.yaml: prompt\.user\) "
                                        rf"stopped: .*{reason}"):
        render_template(template, {}, "eval.jsonl:3", "suite.yaml: prompt.user")


def test_lipsum_is_gone_and_a_limit_does_not_leak_into_the_next_render() -> None:
    with pytest.raises(DataError, match="'lipsum' is undefined"):
        render_template("{{ lipsum(n=10**9) }}", {}, "item")
    with pytest.raises(DataError, match="loops ran more than"):
        render_template("{% for i in range(100000) %}{% for j in range(2) %}{% endfor %}{% endfor %}", {}, "item")
    assert render_template("{% for i in range(99999) %}{% endfor %}ok", {}, "item") == "ok"
