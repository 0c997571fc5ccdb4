"""A model cache converted by an older evalkit gets the current fingerprint, not its stored old one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalkit.models import sources
from evalkit.testing.tiny_model import build_tiny_llama


def test_an_old_scheme_fingerprint_file_is_recomputed_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALKIT_HOME", str(tmp_path / "home"))
    fresh = build_tiny_llama(tmp_path / "fresh")
    expected = sources.model_fingerprint(fresh)
    # The cache as an older evalkit left it: the same files and a fingerprint of the old scheme.
    cached = tmp_path / "home" / "models" / "tiny"
    shutil.copytree(fresh, cached)
    (cached / "evalkit-fingerprint.txt").write_text("0" * 64 + "\n")

    def no_conversion(gguf: Path, target: Path) -> None:
        raise AssertionError("the weights are there: nothing to convert again")

    monkeypatch.setattr(sources, "_convert_gguf", no_conversion)
    resolved = sources._convert_cached("tiny", tmp_path / "unused.gguf", "tiny")
    assert resolved.fingerprint == expected != "0" * 64
    assert (cached / "evalkit-fingerprint-v3.txt").read_text().strip() == expected
