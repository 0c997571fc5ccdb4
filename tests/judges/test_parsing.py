from __future__ import annotations

import pytest

from evalkit.judges.parsing import MalformedJudgment, extract_json_object, parse_pairwise, parse_pointwise

CRITERIA = ["format", "accuracy"]


@pytest.mark.parametrize("reply, scores", [
    ('{"format": 5, "accuracy": 4, "reasoning": "ok"}', {"format": 5, "accuracy": 4}),
    ('```json\n{"format": 3, "accuracy": 2, "reasoning": "x"}\n```', {"format": 3, "accuracy": 2}),
    ('Sure! Here is my verdict: {"format": 1, "accuracy": 1, "reasoning": "bad {json}"} Hope it helps.',
     {"format": 1, "accuracy": 1}),
    ('{"Format": "4", "ACCURACY": 4.0, "reasoning": "case and types"}', {"format": 4, "accuracy": 4}),
    ('{"format": 2, "accuracy": "3/5",}', {"format": 2, "accuracy": 3}),
    ('{"format": 5, "accuracy": 4, "reasoning": "cut off mid-sent', {"format": 5, "accuracy": 4}),
    ('draft {"format": 1} final {"format": 4, "accuracy": 5, "reasoning": "r"}', {"format": 4, "accuracy": 5}),
])
def test_tolerant_parsing(reply: str, scores: dict[str, int]) -> None:
    assert parse_pointwise(reply, CRITERIA).scores == scores


@pytest.mark.parametrize("reply, problem", [
    ("I think it is quite good.", "no JSON"),
    ('{"format": 5, "reasoning": "no accuracy"}', "no score for 'accuracy'"),
    ('{"format": 7, "accuracy": 3}', "outside the scale"),
    ('{"format": 0, "accuracy": 3}', "outside the scale"),
    ('{"format": "great", "accuracy": 3}', "not an integer"),
    ('{"format": 4.5, "accuracy": 3}', "not an integer"),
    ('{"format": true, "accuracy": 3}', "not an integer"),
    ("", "no JSON"),
])
def test_malformed_or_off_scale_judgments_are_refused(reply: str, problem: str) -> None:
    with pytest.raises(MalformedJudgment, match=problem):
        parse_pointwise(reply, CRITERIA)


def test_score_positions_point_at_the_digits() -> None:
    reply = 'x {"format":\n 4, "accuracy": 2}'
    parsed = parse_pointwise(reply, CRITERIA)
    assert reply[parsed.positions["format"]] == "4" and reply[parsed.positions["accuracy"]] == "2"


@pytest.mark.parametrize("reply, winner", [
    ('{"winner": "A", "reasoning": "r"}', "A"),
    ('```\n{"winner": "b"}\n```', "B"),
    ('Verdict: {"winner": "Tie", "reasoning": "same"}', "tie"),
])
def test_pairwise_verdicts(reply: str, winner: str) -> None:
    assert parse_pairwise(reply)[0] == winner


@pytest.mark.parametrize("reply", ['{"winner": "C"}', '{"reasoning": "none"}', "A is better"])
def test_bad_pairwise_verdicts(reply: str) -> None:
    with pytest.raises(MalformedJudgment):
        parse_pairwise(reply)


def test_extract_ignores_braces_inside_strings() -> None:
    assert extract_json_object('note {"a": "}{", "b": 1} end') == {"a": "}{", "b": 1}


@pytest.mark.parametrize("reply", ["[" * 3000, '{"a": ' * 3000, "{" * 5000 + '"format": 4}'])
def test_deeply_nested_replies_are_malformed_not_a_crash(reply: str) -> None:
    assert extract_json_object(reply) is None
    with pytest.raises(MalformedJudgment):
        parse_pointwise(reply, ["format", "accuracy"])
