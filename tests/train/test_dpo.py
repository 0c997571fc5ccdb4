"""DPO on the tiny model: a few steps run, and the reference is the base (adapter disabled)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from training_fixtures import PROMPT, write_train_config

from evalkit.data.classifier_split import make_preferences, write_preferences
from evalkit.data.items import load_items
from evalkit.errors import DataError
from evalkit.prompting import PromptTemplate
from evalkit.train.candidates import train_adapter
from evalkit.train.config import load_train_config
from evalkit.train.lora import SilentReporter, preference_records


def test_dpo_runs_a_few_steps_against_the_frozen_base(tiny_model_dir: Path, train_dir: Path) -> None:
    template = PromptTemplate(PROMPT["system"], PROMPT["user"], PROMPT["expected"])
    train = train_dir / "data" / "train.jsonl"
    write_preferences(make_preferences(load_items(train), template, train, pairs=120), train_dir / "prefs.jsonl")
    path = write_train_config(train_dir, tiny_model_dir, method="dpo", preferences="prefs.jsonl",
                              output_dir="adapters/dpo")
    reporter = SilentReporter()
    manifest = train_adapter(load_train_config(path), reporter)
    assert manifest.method == "dpo" and (train_dir / "adapters" / "dpo" / "adapter_model.safetensors").is_file()
    assert manifest.config["dpo"]["beta"] == 0.1
    # Before the first update the policy IS the reference (the adapter starts at zero),
    # so the DPO loss is exactly -log(sigmoid(0)) = ln 2.
    assert manifest.loss_curve[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert len(manifest.loss_curve) == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "hi", "chosen": "a"}, "missing rejected"),
        ({"prompt": "hi", "chosen": "a", "rejected": "a"}, "chosen equals rejected"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "'prompt' must be"),
        ({"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}, "'prompt' must be"),
    ],
)
def test_bad_preference_lines_name_the_line(row: dict[str, object], message: str, tmp_path: Path) -> None:
    from evalkit.data.items import Item

    with pytest.raises(DataError, match=message) as info:
        preference_records([Item("1", row, line=7)], tmp_path / "prefs.jsonl")
    assert "prefs.jsonl:7" in str(info.value)


def test_string_prompts_become_a_user_message(tmp_path: Path) -> None:
    from evalkit.data.items import Item

    (record,) = preference_records([Item("1", {"prompt": "hi", "chosen": "a", "rejected": "b"}, 1)], tmp_path)
    assert record == {"prompt": [{"role": "user", "content": "hi"}],
                      "chosen": [{"role": "assistant", "content": "a"}],
                      "rejected": [{"role": "assistant", "content": "b"}]}
