"""``replay:``: general text mixed into SFT training, checked on the tiny model and on the shipped replay file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_fixtures import write_rows, write_train_config
from transformers import AutoTokenizer

from evalkit.contamination.ngrams import TrainingNgrams
from evalkit.data.items import load_items
from evalkit.errors import ConfigError, DataError
from evalkit.files.home import file_sha256
from evalkit.models.sources import adapter_fingerprint
from evalkit.train.candidates import train_adapter
from evalkit.train.config import load_train_config, read_manifest
from evalkit.train.lora import SilentReporter, replay_records

REPO = Path(__file__).resolve().parents[2]
SHIPPED_REPLAY = REPO / "data" / "replay" / "handbook.jsonl"
PASSAGES = [
    {"prompt": "Continue this passage.\n\nThe package manager keeps a list of every file it installed.",
     "completion": "When a package is removed, those files go with it, but the configuration files stay."},
    {"prompt": "Continue this passage.\n\nA backup that was never restored is only a hope.",
     "completion": "Test the restore on a spare machine at least once a month, and write down how long it took."},
]


def _trained(directory: Path, model: Path, **overrides: object) -> Path:
    config = load_train_config(write_train_config(directory, model, **overrides))
    reporter = SilentReporter()
    manifest = train_adapter(config, reporter, replace_output=True)
    recorded = read_manifest(config.output_path)
    assert recorded is not None
    if "replay" in overrides:
        assert manifest.config["replay"] == overrides["replay"]
        assert any(note.startswith("replay: 2 turns of general text") for note in reporter.notes)
        # The manifest names the replay file (relative on disk, so the adapter travels) and its hash.
        replay = config.replay_data_path
        assert replay is not None and Path(recorded.replay_path) == replay
        assert (recorded.replay_sha256, recorded.replay_examples) == (file_sha256(replay), 2)
    else:
        assert (recorded.replay_path, recorded.replay_sha256, recorded.replay_examples) == ("", "", 0)
    return config.output_path


def test_replay_turns_are_trained_beside_the_examples(train_dir: Path, tiny_model_dir: Path) -> None:
    write_rows(train_dir / "data" / "replay.jsonl", PASSAGES)
    # Same seed, same steps: only the replay turns differ, and they change the trained weights.
    # (Batches of 64 hold the two replay turns in the first step; no warm-up, whose first step has rate 0.)
    training = {"max_steps": 1, "batch_size": 64, "learning_rate": 0.01, "max_seq_length": 512, "warmup_ratio": 0.0}
    plain = adapter_fingerprint(_trained(train_dir, tiny_model_dir, training=training, output_dir="adapters/plain"))
    mixed = adapter_fingerprint(_trained(train_dir, tiny_model_dir, training=training, output_dir="adapters/mixed",
                                         replay={"data": "data/replay.jsonl"}))
    assert plain != mixed


def test_a_changed_replay_file_makes_the_adapter_stale(train_dir: Path, tiny_model_dir: Path) -> None:
    replay = write_rows(train_dir / "data" / "replay.jsonl", PASSAGES)
    plain = load_train_config(write_train_config(train_dir, tiny_model_dir))
    plain_print = plain.fingerprint(plain.prompt_template())
    config = load_train_config(write_train_config(train_dir, tiny_model_dir, replay={"data": "data/replay.jsonl"}))
    template = config.prompt_template()
    before = config.fingerprint(template)
    write_rows(replay, PASSAGES[:1])
    assert len({plain_print, before, config.fingerprint(template)}) == 3


def test_replay_is_refused_for_dpo(train_dir: Path, tiny_model_dir: Path) -> None:
    path = write_train_config(train_dir, tiny_model_dir, method="dpo", preferences="data/train.jsonl",
                              replay={"data": "data/replay.jsonl"})
    with pytest.raises(ConfigError, match="replay: mixes general text into SFT examples"):
        load_train_config(path)


def test_a_missing_replay_file_is_named_before_anything_loads(train_dir: Path, tiny_model_dir: Path) -> None:
    config = load_train_config(write_train_config(train_dir, tiny_model_dir, replay={"data": "data/gone.jsonl"}))
    with pytest.raises(DataError, match=r"train\.yaml: replay\.data: .*gone\.jsonl not found"):
        train_adapter(config)
    assert not config.output_path.exists()


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "Continue.", "completion": ""}, r"replay\.jsonl:2: `completion` must be a non-empty string"),
    ({"completion": "text"}, r"replay\.jsonl:2: `prompt` must be a non-empty string"),
    ({"prompt": "Continue.", "completion": "word " * 600}, r"replay\.jsonl:2: the replay turn is \d+ tokens, over"),
])
def test_a_bad_replay_line_is_named_with_its_line(tmp_path: Path, tiny_model_dir: Path, row: dict[str, str],
                                                   message: str) -> None:
    path = write_rows(tmp_path / "replay.jsonl", [PASSAGES[0], row])
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    with pytest.raises(DataError, match=message):
        replay_records(load_items(path), path, tokenizer, 256)


def test_replay_turns_use_the_models_own_chat_template_not_the_task_prompt(tmp_path: Path,
                                                                           tiny_model_dir: Path) -> None:
    path = write_rows(tmp_path / "replay.jsonl", PASSAGES)
    records = replay_records(load_items(path), path, AutoTokenizer.from_pretrained(str(tiny_model_dir)), 256)
    assert records[1] == {"prompt": [{"role": "user", "content": PASSAGES[1]["prompt"]}],
                          "completion": [{"role": "assistant", "content": PASSAGES[1]["completion"]}]}


def test_the_shipped_replay_text_shares_no_13gram_with_the_probes_or_the_task_data() -> None:
    # The probes must still measure text the replay never trained on (make_replay.py's filter, checked).
    replay = [json.loads(line) for line in SHIPPED_REPLAY.read_text(encoding="utf-8").splitlines()]
    assert len(replay) == 256 and all(r["source"].startswith("debian-handbook ") for r in replay)
    index = TrainingNgrams([f"{r['prompt']} {r['completion']}" for r in replay])
    benchmarks = REPO / "evalkit" / "benchmarks"
    general = [json.loads(line)["text"] for line in
               (benchmarks / "general_text" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    continuation = [" ".join([i["context"], *i["choices"]]) for i in map(json.loads, (
        benchmarks / "continuation" / "items.jsonl").read_text(encoding="utf-8").splitlines())]
    task = [json.dumps(json.loads(line)) for name in ("train.jsonl", "eval.jsonl") for line in
            (REPO / "data" / "classifier" / name).read_text(encoding="utf-8").splitlines()]
    texts = general + continuation + task
    assert len(general) >= 60 and len(continuation) >= 200
    result = index.overlap([(str(n), text) for n, text in enumerate(texts)])
    assert result.contaminated == 0, result
