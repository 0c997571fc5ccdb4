from __future__ import annotations

import copy
from pathlib import Path

import pytest

from evalkit.errors import ConfigError, DataError
from evalkit.judges.rubric import load_rubric, pairwise_messages, pointwise_messages

REPO = Path(__file__).resolve().parents[2]


def test_shipped_rubrics_load_and_render() -> None:
    for path in ("rubrics/classifier_quality.yaml", "rubrics/support_reply_tone.yaml"):
        rubric = load_rubric(REPO / path)
        assert rubric.sample is not None
        messages = pointwise_messages(rubric, rubric.sample.item, rubric.sample.prediction, rubric.sample.reference)
        assert messages[0]["role"] == "system"
        assert rubric.sample.prediction in messages[-1]["content"]
        assert all(f'"{c}": <1-5>' in messages[-1]["content"] for c in rubric.criterion_names)


def test_classifier_rubric_has_the_articles_criteria() -> None:
    assert load_rubric(REPO / "rubrics/classifier_quality.yaml").criterion_names == ["format", "accuracy", "style"]


def test_missing_level_description_names_file_line_and_field(write_rubric, good_rubric) -> None:  # type: ignore[no-untyped-def]
    data = good_rubric
    del data["criteria"][1]["levels"][3]
    path = write_rubric(data)
    with pytest.raises(ConfigError) as error:
        load_rubric(path)
    message = str(error.value)
    assert str(path) in message and "criteria.1.levels" in message and "missing: 3" in message
    assert f"{path}:" in message  # a line number follows the file


@pytest.mark.parametrize("mutation, expected", [
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
    (lambda d: d["criteria"].append(copy.deepcopy(d["criteria"][0])), "repeated: format"),
    (lambda d: d["criteria"][0]["levels"].update({6: "x"}), "remove 6"),
    (lambda d: d.update(template="{% if %}"), "syntax error"),
    (lambda d: d.update(template="{% include '/etc/passwd' %}"), "reads other files"),
    (lambda d: d.update(template="{% import 'x' as y %}"), "reads other files"),
    (lambda d: d.update(examples=[{"item": {}, "prediction": "p", "scores": {"format": 9, "style": 1}}]),
     "1..5"),
])
def test_invalid_rubrics_fail_with_a_clear_message(write_rubric, good_rubric, mutation, expected) -> None:  # type: ignore[no-untyped-def]
    data = good_rubric
    mutation(data)
    with pytest.raises(ConfigError, match=expected):
        load_rubric(write_rubric(data))


@pytest.mark.parametrize("template", [
    "{{ prediction.__class__.__mro__[1].__subclasses__() }}",
    "{{ item.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].listdir('/') }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
])
def test_sandbox_refuses_python_internals(write_rubric, good_rubric, template: str) -> None:  # type: ignore[no-untyped-def]
    data = good_rubric
    data["template"] = template
    rubric = load_rubric(write_rubric(data))
    with pytest.raises(DataError) as error:
        pointwise_messages(rubric, {"input": "x"}, "p", "r")
    message = str(error.value)
    assert "rubric.yaml" in message
    assert "root:" not in message and "/bin" not in message  # nothing leaked from the file system


def test_template_needing_a_missing_field_names_it(write_rubric, good_rubric) -> None:  # type: ignore[no-untyped-def]
    rubric = load_rubric(write_rubric(good_rubric))
    with pytest.raises(DataError, match="input"):
        pointwise_messages(rubric, {"other": 1}, "p", "r", "item 7")


def test_few_shot_examples_become_prior_turns(write_rubric, good_rubric) -> None:  # type: ignore[no-untyped-def]
    data = good_rubric
    data["examples"] = [{"item": {"input": "ex"}, "prediction": "bad", "scores": {"format": 1, "style": 2},
                         "reasoning": "why"}]
    rubric = load_rubric(write_rubric(data))
    messages = pointwise_messages(rubric, {"input": "real"}, "p", "r")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert '"format": 1' in messages[2]["content"] and "real" in messages[3]["content"]


def test_pairwise_prompt_shows_both_responses(write_rubric, good_rubric) -> None:  # type: ignore[no-untyped-def]
    rubric = load_rubric(write_rubric(good_rubric))
    text = pairwise_messages(rubric, {"input": "q"}, "FIRST", "SECOND", "ref")[-1]["content"]
    assert text.index("FIRST") < text.index("SECOND") and '"winner"' in text


def test_content_hash_tracks_what_the_judge_reads(write_rubric, good_rubric, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = load_rubric(write_rubric(good_rubric)).content_hash()
    changed = copy.deepcopy(good_rubric)
    changed["criteria"][0]["levels"][1] = "not JSON"
    assert load_rubric(write_rubric(changed, "b.yaml")).content_hash() != base
    relabelled = dict(copy.deepcopy(good_rubric), labels="other.jsonl")
    assert load_rubric(write_rubric(relabelled, "c.yaml")).content_hash() == base
