"""The shipped classifier preference set: reproducible, from train only, with the suite's prompt."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from evalkit.cli import main
from evalkit.data.items import load_items
from evalkit.prompting import prompt_for_candidate
from evalkit.suite.config import load_suite

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data" / "classifier" / "preferences.jsonl"


def test_the_committed_set_is_what_the_generator_makes(tmp_path: Path, monkeypatch: object) -> None:
    out = tmp_path / "prefs.jsonl"
    assert main(["data", "preferences", "--train", str(REPO / "data/classifier/train.jsonl"),
                 "--suite", str(REPO / "suites/classifier.yaml"), "--out", str(out)]) == 0
    assert out.read_text() == SHIPPED.read_text(), "regenerate: evalkit data preferences"


def test_pairs_prefer_the_canonical_answer_over_three_kinds_of_wrong_one() -> None:
    rows = [json.loads(line) for line in SHIPPED.read_text().splitlines()]
    train = {item.fields["input"]: item.fields["output"] for item in load_items(REPO / "data/classifier/train.jsonl")}
    evaluation = {item.fields["input"] for item in load_items(REPO / "data/classifier/eval.jsonl")}
    suite = load_suite(REPO / "suites" / "classifier.yaml")
    template = prompt_for_candidate(suite, suite.candidates[0])
    assert Counter(r["rejected_kind"] for r in rows) == {"verbose": 80, "misformatted": 80, "mislabelled": 80}
    for row in rows:
        message = row["prompt"][-1]["content"].split("\n\n", 1)[1]
        assert message in train and message not in evaluation
        assert row["chosen"] == train[message] and row["rejected"] != row["chosen"]
        assert row["prompt"] == template.messages({"instruction": row["prompt"][-1]["content"].split("\n\n")[0],
                                                   "input": message})
