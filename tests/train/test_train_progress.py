"""`evalkit train` reports progress like `evalkit run`, and leaves the libraries' bars as it found them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from training_fixtures import write_train_config

from evalkit.progress import SilentProgress
from evalkit.train.candidates import train_adapter
from evalkit.train.config import load_train_config
from evalkit.train.lora import ProgressReporter


def test_a_piped_training_run_prints_plain_progress_and_loss_lines(train_dir: Path, tiny_model_dir: Path) -> None:
    config = write_train_config(train_dir, tiny_model_dir)
    # stdout and stderr are pipes, as in CI: no terminal, so no rich bars.
    proc = subprocess.run(
        [sys.executable, "-m", "evalkit", "train", str(config), "--max-steps", "10"],
        capture_output=True, text=True, timeout=600, cwd=train_dir,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    progress = [line for line in lines if line.startswith("training tiny (sft): ")]
    assert progress[0].startswith("training tiny (sft): 0/10 (0%)"), progress
    assert progress[-1].startswith("training tiny (sft): done 10/10 (100%)"), progress
    # A line at least every tenth of the run, each with the rate and the ETA.
    assert len(progress) >= 10
    assert all(re.search(r"\d+/10 \(\d+%\), [\d.]+ items/s, .* elapsed, ETA ", line) for line in progress)
    assert any(re.fullmatch(r"note: step 10/10: loss \d+\.\d{4}", line) for line in lines), lines
    # No tqdm bar leaked through (they redraw with carriage returns).
    assert "\r" not in proc.stderr and "it/s]" not in proc.stderr
    assert "adapter:" in proc.stdout and (train_dir / "adapters" / "tiny" / "adapter_config.json").is_file()


def test_training_restores_the_libraries_bars_afterwards(train_dir: Path, tiny_model_dir: Path) -> None:
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.enable_progress_bars()
    transformers_logging.enable_progress_bar()
    config = load_train_config(write_train_config(train_dir, tiny_model_dir, training={
        "max_steps": 2, "batch_size": 4, "learning_rate": 0.01, "max_seq_length": 512}))
    progress = SilentProgress()
    seen: list[tuple[bool, bool]] = []

    class Watching(ProgressReporter):
        def step(self, step: int, loss: float | None) -> None:
            seen.append((datasets.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled()))
            super().step(step, loss)

    train_adapter(config, Watching(progress, loss_step=0.5))
    assert seen and not any(any(state) for state in seen), "bars are off while training"
    assert datasets.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    loss_notes = [note for note in progress.notes if note.startswith("step ")]
    assert len(loss_notes) == 2 and all(re.fullmatch(r"step [12]/2: loss \d+\.\d{4}", n) for n in loss_notes)
