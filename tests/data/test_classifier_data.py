"""Tests for the synthetic customer-support classifier data (evalkit.data.classifier)."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

from evalkit.data.classifier import (
    CLASSIFIER_INSTRUCTION,
    DEFAULT_COUNT,
    DEFAULT_EXTRA_TRAIN,
    DEFAULT_SEED,
    FIELD_VALUES,
    OUTPUT_FIELDS,
    canonical_output,
    derive_labels,
    generate_examples,
)
from evalkit.data.classifier_split import extra_training_examples, split_examples, write_classifier_data
from evalkit.data.items import find_near_duplicates, normalize_text

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "data" / "classifier"

Example = dict[str, str]


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return generate_examples(DEFAULT_COUNT, DEFAULT_SEED)


@pytest.fixture(scope="module")
def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    return split_examples(examples, seed=DEFAULT_SEED)


def _labels(example: Example) -> dict[str, str]:
    labels = json.loads(example["output"])
    assert isinstance(labels, dict)
    return labels


def _read_jsonl(path: Path) -> list[Example]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_constants() -> None:
    assert CLASSIFIER_INSTRUCTION == "Classify this customer message by severity and category"
    assert OUTPUT_FIELDS == ("severity", "category", "urgency", "sentiment", "recommended_action")
    assert tuple(FIELD_VALUES) == OUTPUT_FIELDS
    assert FIELD_VALUES["severity"] == ("critical", "high", "medium", "low")
    assert FIELD_VALUES["category"] == (
        "account_access",
        "billing",
        "shipping",
        "technical",
        "general_inquiry",
    )
    assert FIELD_VALUES["urgency"] == ("immediate", "same_day", "routine")
    assert FIELD_VALUES["sentiment"] == ("distressed", "frustrated", "neutral", "positive")
    assert FIELD_VALUES["recommended_action"] == ("escalate_to_agent", "create_ticket", "self_service")


def test_canonical_output_orders_keys_and_validates() -> None:
    labels = {
        "recommended_action": "escalate_to_agent",
        "sentiment": "distressed",
        "urgency": "immediate",
        "category": "account_access",
        "severity": "critical",
    }
    assert canonical_output(labels) == (
        '{"severity": "critical", "category": "account_access", "urgency": "immediate", '
        '"sentiment": "distressed", "recommended_action": "escalate_to_agent"}'
    )
    with pytest.raises(ValueError):
        canonical_output({**labels, "severity": "urgent"})
    with pytest.raises(ValueError):
        canonical_output({k: v for k, v in labels.items() if k != "urgency"})
    with pytest.raises(ValueError):
        canonical_output({**labels, "extra": "x"})


def test_derive_labels_applies_rules() -> None:
    assert derive_labels("billing", "fraud", "neutral")["severity"] == "critical"
    assert derive_labels("shipping", "emergency", "positive")["urgency"] == "immediate"
    assert derive_labels("technical", "blocked", "frustrated")["recommended_action"] == "escalate_to_agent"
    assert derive_labels("general_inquiry", "degraded", "neutral")["recommended_action"] == "create_ticket"
    assert derive_labels("account_access", "request", "distressed") == {
        "severity": "low",
        "category": "account_access",
        "urgency": "routine",
        "sentiment": "distressed",
        "recommended_action": "self_service",
    }
    with pytest.raises(ValueError):
        derive_labels("billing", "meltdown", "neutral")


def test_examples_have_instruction_input_and_canonical_output(examples: list[Example]) -> None:
    assert len(examples) == DEFAULT_COUNT >= 600
    for example in examples:
        assert list(example) == ["instruction", "input", "output"]
        assert example["instruction"] == CLASSIFIER_INSTRUCTION
        assert example["input"].strip() == example["input"] and example["input"]
        labels = _labels(example)
        assert tuple(labels) == OUTPUT_FIELDS
        for field, value in labels.items():
            assert value in FIELD_VALUES[field]
        assert example["output"] == canonical_output(labels)


def test_rule_derived_fields_always_hold(examples: list[Example]) -> None:
    urgency = {"critical": "immediate", "high": "same_day", "medium": "routine", "low": "routine"}
    action = {
        "critical": "escalate_to_agent",
        "high": "escalate_to_agent",
        "medium": "create_ticket",
        "low": "self_service",
    }
    for example in examples:
        labels = _labels(example)
        assert labels["urgency"] == urgency[labels["severity"]]
        assert labels["recommended_action"] == action[labels["severity"]]


def test_generation_is_reproducible(examples: list[Example]) -> None:
    assert generate_examples(DEFAULT_COUNT, DEFAULT_SEED) == examples
    other = generate_examples(DEFAULT_COUNT, DEFAULT_SEED + 1)
    assert other != examples
    shared = {e["input"] for e in examples} & {e["input"] for e in other}
    assert len(shared) < DEFAULT_COUNT // 10


def test_invalid_count_rejected() -> None:
    with pytest.raises(ValueError):
        generate_examples(0, DEFAULT_SEED)


def test_labels_are_balanced(examples: list[Example]) -> None:
    labels = [_labels(e) for e in examples]
    categories = Counter(lab["category"] for lab in labels)
    assert set(categories) == set(FIELD_VALUES["category"])
    assert max(categories.values()) - min(categories.values()) <= 1

    severities = Counter(lab["severity"] for lab in labels)
    shares = {sev: severities[sev] / len(labels) for sev in FIELD_VALUES["severity"]}
    assert 0.15 <= shares["critical"] <= 0.25
    assert 0.20 <= shares["high"] <= 0.30
    assert 0.20 <= shares["medium"] <= 0.30
    assert 0.25 <= shares["low"] <= 0.35

    # Tone is independent of severity: every sentiment occurs at every severity.
    pairs = Counter((lab["severity"], lab["sentiment"]) for lab in labels)
    for severity in FIELD_VALUES["severity"]:
        for sentiment in FIELD_VALUES["sentiment"]:
            assert pairs[severity, sentiment] >= 5, (severity, sentiment)
    # Every category has every severity too.
    cat_sev = Counter((lab["category"], lab["severity"]) for lab in labels)
    assert len(cat_sev) == len(FIELD_VALUES["category"]) * len(FIELD_VALUES["severity"])


def test_messages_vary(examples: list[Example]) -> None:
    messages = [e["input"] for e in examples]
    assert len(set(messages)) == len(messages)
    assert len({normalize_text(m) for m in messages}) == len(messages)
    prefixes = {" ".join(normalize_text(m).split()[:5]) for m in messages}
    assert len(prefixes) >= 0.6 * len(messages)
    lengths = [len(m.split()) for m in messages]
    assert min(lengths) <= 8
    assert max(lengths) >= 40
    assert statistics.pstdev(lengths) >= 6
    # Casual writing: some all-lowercase messages, some typos, some multi-line.
    assert sum(m == m.lower() for m in messages) >= 0.05 * len(messages)
    assert sum("\n" in m for m in messages) >= 0.05 * len(messages)


def test_split_has_no_leakage_and_covers_labels(
    examples: list[Example], split: tuple[list[Example], list[Example]]
) -> None:
    train, eval_ = split
    assert len(train) + len(eval_) == len(examples)
    assert len(eval_) == round(0.1 * len(examples))
    assert sorted(e["input"] for e in train + eval_) == sorted(e["input"] for e in examples)
    assert find_near_duplicates([e["input"] for e in train], [e["input"] for e in eval_]) == []
    eval_labels = [_labels(e) for e in eval_]
    assert {lab["severity"] for lab in eval_labels} == set(FIELD_VALUES["severity"])
    assert {lab["category"] for lab in eval_labels} == set(FIELD_VALUES["category"])
    assert {lab["sentiment"] for lab in eval_labels} == set(FIELD_VALUES["sentiment"])


def test_split_is_deterministic_and_validates(
    examples: list[Example], split: tuple[list[Example], list[Example]]
) -> None:
    assert split_examples(examples, seed=DEFAULT_SEED) == split
    assert split_examples(examples, seed=1) != split
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError):
            split_examples(examples, eval_fraction=bad)


def test_split_keeps_planted_near_duplicates_on_one_side() -> None:
    base = generate_examples(200, seed=3)
    # Re-wrap every fifth message with a new greeting and sign-off.
    planted = [{**e, "input": f"Hello team, {e['input']} Kind regards, Zed"} for e in base[::5]]
    train, eval_ = split_examples(base + planted, eval_fraction=0.2, seed=5)
    assert eval_
    assert find_near_duplicates([e["input"] for e in train], [e["input"] for e in eval_]) == []


def test_write_classifier_data_is_byte_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    train_a, eval_a = write_classifier_data(first, count=300, seed=11)
    train_b, eval_b = write_classifier_data(second, count=300, seed=11)
    assert (train_a, eval_a) == (first / "train.jsonl", first / "eval.jsonl")
    assert train_a.read_bytes() == train_b.read_bytes()
    assert eval_a.read_bytes() == eval_b.read_bytes()
    train_c, _ = write_classifier_data(tmp_path / "c", count=300, seed=12)
    assert train_c.read_bytes() != train_a.read_bytes()
    # Atomic writes leave no temp files behind.
    assert sorted(p.name for p in first.iterdir()) == ["README.md", "eval.jsonl", "train.jsonl"]


def test_jsonl_format(tmp_path: Path) -> None:
    train_path, eval_path = write_classifier_data(tmp_path, count=120, seed=4)
    for path in (train_path, eval_path):
        raw = path.read_bytes()
        assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
        assert raw.isascii()  # json.dumps default ensure_ascii
        for line in raw.decode().splitlines():
            record = json.loads(line)
            assert list(record) == ["instruction", "input", "output"]
            assert line == json.dumps(record)


def test_committed_files_match_fresh_regeneration(tmp_path: Path) -> None:
    write_classifier_data(tmp_path)
    for name in ("train.jsonl", "eval.jsonl", "README.md"):
        assert (COMMITTED / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"data/classifier/{name} is stale; regenerate with `evalkit data classifier --out data/classifier`"
        )


def test_committed_files_have_expected_size_and_no_leakage() -> None:
    train = _read_jsonl(COMMITTED / "train.jsonl")
    eval_ = _read_jsonl(COMMITTED / "eval.jsonl")
    # The split's 10% eval share of DEFAULT_COUNT; the extra messages go to train only.
    assert len(eval_) == 80 and len(train) >= 720 + DEFAULT_EXTRA_TRAIN * 0.8
    assert find_near_duplicates([e["input"] for e in train], [e["input"] for e in eval_]) == []


def test_extra_training_messages_leave_the_eval_split_as_it_was(tmp_path: Path) -> None:
    _, eval_plain = write_classifier_data(tmp_path / "plain", count=300, seed=11, extra_train=0)
    train_path, eval_grown = write_classifier_data(tmp_path / "grown", count=300, seed=11, extra_train=400)
    assert eval_grown.read_bytes() == eval_plain.read_bytes()
    plain_train = _read_jsonl(tmp_path / "plain" / "train.jsonl")
    grown_train = _read_jsonl(train_path)
    assert grown_train[: len(plain_train)] == plain_train
    extra = grown_train[len(plain_train):]
    assert 300 <= len(extra) <= 400  # some are dropped as near twins of eval or of train
    eval_texts = [e["input"] for e in _read_jsonl(eval_grown)]
    assert find_near_duplicates([e["input"] for e in grown_train], eval_texts) == []
    assert len({e["input"].lower() for e in grown_train}) == len(grown_train)
    card = (tmp_path / "grown" / "README.md").read_text()
    assert "--count 300 --seed 11 --extra-train 400" in card and "with seed 12 for train only" in card


def test_extra_training_examples_drop_what_would_leak() -> None:
    train, eval_ = split_examples(generate_examples(200, 3), seed=3)
    # The next seed's messages: none equals a message of the split or near-duplicates eval.
    kept = extra_training_examples(train, eval_, 150, 3)
    assert kept and not {e["input"] for e in kept} & {e["input"] for e in eval_ + train}
    assert find_near_duplicates([e["input"] for e in kept], [e["input"] for e in eval_]) == []
    assert extra_training_examples(train, eval_, 0, 3) == []


def _template_regex(template: str) -> re.Pattern[str]:
    # Slots become wildcards; matching ignores case and a dropped final stop.
    parts = re.split(r"\{\w+\}", template.rstrip(".?!"))
    return re.compile(".+?".join(re.escape(p) for p in parts), re.IGNORECASE)


def test_label_deciding_text_survives_typos(examples: list[Example]) -> None:
    # White-box check that typos only touch filler: every message still holds an
    # intact situation phrasing whose category and kind agree with its labels,
    # and only critical non-fraud messages carry a deadline/emergency reason.
    from evalkit.data import classifier

    phrasings = [
        (category, pool, _template_regex(template))
        for category, pools in classifier._BANK.items()
        for pool, situations in pools.items()
        for phrasing_list in situations
        for template in phrasing_list
    ]
    reasons = [
        _template_regex(reason)
        for reason_list in (*classifier._EMERGENCY_REASONS.values(), classifier._EMERGENCY_REASONS_GENERIC)
        for reason in reason_list
    ]
    allowed = {"fraud": {"critical"}, "blocked": {"critical", "high"}, "degraded": {"medium"}, "request": {"low"}}
    for example in examples:
        message, labels = example["input"], _labels(example)
        matches = {(cat, pool) for cat, pool, rx in phrasings if rx.search(message)}
        assert matches, message
        assert all(cat == labels["category"] for cat, _ in matches), message
        assert all(labels["severity"] in allowed[pool] for _, pool in matches), message
        has_reason = any(rx.search(message) for rx in reasons)
        is_emergency = labels["severity"] == "critical" and ("fraud" not in {p for _, p in matches})
        assert has_reason == is_emergency, message
