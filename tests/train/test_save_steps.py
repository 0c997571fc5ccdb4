"""`training.save_steps`: a short real run leaves checkpoint-N adapters that a suite's sweep evaluates."""

from __future__ import annotations

import json
from pathlib import Path

from training_fixtures import write_train_config

from evalkit.api import run_suite
from evalkit.models.sources import adapter_fingerprint
from evalkit.train.candidates import train_adapter
from evalkit.train.config import load_train_config
from evalkit.train.lora import SilentReporter


def test_checkpoints_are_kept_and_swept_on_one_base(train_dir: Path, tiny_model_dir: Path) -> None:
    path = write_train_config(train_dir, tiny_model_dir,
                              training={"max_steps": 4, "save_steps": 2, "batch_size": 4, "learning_rate": 0.01,
                                        "max_seq_length": 512})
    config = load_train_config(path)
    train_adapter(config, SilentReporter())
    checkpoints = sorted((config.output_path / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["checkpoint-2", "checkpoint-4"]
    for folder in checkpoints:
        assert {p.name for p in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors",
                                                      "trainer_state.json"}
    # The last checkpoint is the final adapter; the earlier one is not.
    assert adapter_fingerprint(checkpoints[-1]) == adapter_fingerprint(config.output_path)
    assert adapter_fingerprint(checkpoints[0]) != adapter_fingerprint(config.output_path)
    # save_steps says where checkpoints go, not what the adapter is: same fingerprint without it.
    plain = load_train_config(write_train_config(train_dir, tiny_model_dir))
    plain.training.max_steps = 4
    template = config.prompt_template()
    assert config.fingerprint(template) == plain.fingerprint(template)

    suite = {
        "name": "sweep-tiny",
        "dataset": {"path": str(train_dir / "data" / "eval.jsonl"), "limit": 4},
        "prompt": {"user": "{{ instruction }}\n\n{{ input }}", "expected": "{{ output }}"},
        "generation": {"max_new_tokens": 6, "batch_size": 4},
        "candidates": [{"name": "base", "model": str(tiny_model_dir)}],
        "checks": ["exact_match", "json_valid"],
        "sweep": {"name": "tiny", "model": str(tiny_model_dir),
                  "checkpoints": str(config.output_path / "checkpoints"), "task_metric": "json_valid"},
        "bars": [{"tiny": "json_valid >= 0.0"}],
        "output_dir": str(train_dir / "reports"),
    }
    suite_path = train_dir / "sweep.yaml"
    suite_path.write_text(json.dumps(suite))
    run = run_suite(suite_path)
    section = run.summary()["sections"]["sweep"]
    assert [p["candidate"] for p in section["points"]] == ["tiny-step-2", "tiny-step-4"]
    assert section["pick"] in {"tiny-step-2", "tiny-step-4"}
    assert run.sections["bars"][0]["candidate"] == section["pick"]
    assert run.sections["bars"][0]["status"] == "passed"
    assert run.run_dir is not None and 'id="sweep"' in (run.run_dir / "report.html").read_text()
