"""Train config: validation errors name the line, and the prompt is the suite's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalkit.errors import ConfigError
from evalkit.prompting import prompt_for_candidate
from evalkit.suite.config import load_suite
from evalkit.train.config import load_train_config, with_overrides

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: d.jsonl\noutput_dir: out\n", "exactly one of `suite:`"),
        ("suite: s.yaml\nprompt: {user: x}\ndata: d.jsonl\noutput_dir: out\n", "exactly one of `suite:`"),
        ("prompt: {user: x}\noutput_dir: out\n", "method sft needs `data:`"),
        ("method: dpo\nprompt: {user: x}\ndata: d.jsonl\noutput_dir: out\n", "needs `preferences:`"),
        ("prompt: {user: x}\ndata: d.jsonl\noutput_dir: out\nlora:\n  rank: 8\n", ":5: lora.rank: unknown key"),
        ("prompt: {user: x}\ndata: d.jsonl\noutput_dir: out\ntraining:\n  epochs: 0\n", ":5: training.epochs"),
        ("prompt: {user: x, few_shot: 2}\ndata: d.jsonl\noutput_dir: out\n", "few-shot prompts are not trained"),
    ],
)
def test_invalid_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_train_config(_write(tmp_path, text))
    assert str(tmp_path / "train.yaml") in str(info.value)


def test_defaults_are_the_articles_lora() -> None:
    from evalkit.train.config import DPOSettings, LoraSettings

    defaults = LoraSettings()
    assert (defaults.r, defaults.alpha, defaults.dropout, defaults.bias) == (16, 32, 0.05, "none")
    assert defaults.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert DPOSettings().beta == 0.1
    # The demo recipe keeps the article's rank and scale and adds the MLP projections.
    shipped = load_train_config(REPO / "train" / "classifier-lora.yaml").lora
    assert (shipped.r, shipped.alpha) == (16, 32)
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= set(shipped.target_modules)


def test_the_demo_config_trains_on_the_suites_own_prompt() -> None:
    config = load_train_config(REPO / "train" / "classifier-lora.yaml")
    suite = load_suite(REPO / "suites" / "classifier.yaml")
    lora = next(c for c in suite.candidates if c.train)
    assert suite.resolve(lora.train) == config.source
    assert config.prompt_template() == prompt_for_candidate(suite, lora)
    assert config.output_path == suite.resolve(lora.adapter or "")
    assert config.eval_data_path() == suite.resolve(suite.dataset.path)


def test_a_changed_prompt_changes_the_fingerprint(tmp_path: Path) -> None:
    base = {"prompt": {"user": "{{ input }}"}, "data": "d.jsonl", "output_dir": "out"}
    first = load_train_config(_write(tmp_path, yaml.safe_dump(base)))
    moved = load_train_config(_write(tmp_path, yaml.safe_dump({**base, "output_dir": "elsewhere"})))
    changed = load_train_config(_write(tmp_path, yaml.safe_dump({**base, "prompt": {"user": "Q: {{ input }}"}})))
    assert first.fingerprint(first.prompt_template()) == moved.fingerprint(moved.prompt_template())
    assert first.fingerprint(first.prompt_template()) != changed.fingerprint(changed.prompt_template())


def test_overrides_are_validated_again(tmp_path: Path) -> None:
    config = load_train_config(_write(tmp_path, "prompt: {user: x}\ndata: d.jsonl\noutput_dir: out\n"))
    tried = with_overrides(config, max_steps=5, output_dir=str(tmp_path / "o"), method=None)
    assert tried.training.max_steps == 5 and tried.output_path == tmp_path / "o" and tried.method == "sft"
    with pytest.raises(ConfigError, match="preferences"):
        with_overrides(config, method="dpo")
