"""`--qlora` on a CPU-only machine stops at once, with exit code 2 and a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_fixtures import write_train_config

from evalkit.cli import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal; this machine has CUDA")
def test_qlora_on_cpu_fails_clearly(tiny_model_dir: Path, train_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_train_config(train_dir, tiny_model_dir)
    assert main(["train", str(config), "--qlora"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalkit: error: --qlora") and "CUDA GPU" in err and "without --qlora" in err
    assert not (train_dir / "adapters").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal; this machine has CUDA")
def test_qlora_in_the_config_is_refused_too(tiny_model_dir: Path, train_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_train_config(train_dir, tiny_model_dir, qlora=True)
    assert main(["train", str(config)]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
