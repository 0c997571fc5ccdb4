"""The shared digests keep the values evalkit has always written.

Cache keys and stored fingerprints (adapter identity, prompt format, task files, dataset
files) are compared across runs and machines, so a refactor that changes one byte of what
is hashed would silently invalidate every cache and make old runs look like other models.
The expected values below were computed with the code before the digests were shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.benchmarks.evaluate import task_files_digest
from evalkit.files.home import file_sha256, files_digest
from evalkit.models.sources import adapter_fingerprint
from evalkit.store.cache import prompt_format_fingerprint

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture
def fixture_dir(tmp_path: Path) -> Path:
    """A small directory holding an adapter, tokenizer files, a task file and a lock."""
    (tmp_path / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}\n')
    (tmp_path / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "tokenizer_config.json").write_text('{"chat_template": "{{ messages }}"}')
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "task.yaml").write_text("task: demo\n")
    (tmp_path / "x.lock").write_text("ignored")
    return tmp_path


def test_adapter_fingerprint_is_unchanged(fixture_dir: Path) -> None:
    assert adapter_fingerprint(fixture_dir) == "c63bac5e8c9d447c9a0c31936221231e4a9a535ff88016d45838a0e9d297b881"
    assert adapter_fingerprint(fixture_dir / "sub") == EMPTY_SHA256


def test_prompt_format_fingerprint_is_unchanged(fixture_dir: Path) -> None:
    # Changed once on purpose: the prompt format is now hashed normalised (canonical JSON,
    # loader flags left out), like the model fingerprint; the old value hashed raw bytes.
    assert prompt_format_fingerprint(fixture_dir) == "1df0d09e782a767baa973dd0974af19cf88ee1b81759ded053da506dd4d77bb1"


def test_task_files_digest_is_unchanged(fixture_dir: Path) -> None:
    assert task_files_digest(fixture_dir) == "d1f7511e4329f72a279a47a2419110d9b224cf051f5726b7a390358d074dc9af"
    assert task_files_digest(None) is None


def test_file_sha256_is_the_plain_sha256_of_the_bytes(fixture_dir: Path) -> None:
    assert file_sha256(fixture_dir / "adapter_model.safetensors") == (
        "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9")


def test_files_digest_skips_absent_names_and_follows_the_given_order(fixture_dir: Path) -> None:
    both = files_digest(fixture_dir, ["tokenizer.json", "adapter_config.json"])
    assert files_digest(fixture_dir, ["tokenizer.json", "missing.bin", "adapter_config.json"]) == both
    assert files_digest(fixture_dir, ["adapter_config.json", "tokenizer.json"]) != both
    assert files_digest(fixture_dir, []) == EMPTY_SHA256
