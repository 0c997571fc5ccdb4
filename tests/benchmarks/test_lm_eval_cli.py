"""`python -m evalkit.lm_eval`: lm-eval's own CLI runs evalkit's model on a bundled MMLU task."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from evalkit.lm_eval import lm_eval_argv, requested_tasks


def test_requested_tasks_reads_every_spelling() -> None:
    assert requested_tasks(["--tasks", "a,b", "c", "--limit", "2"]) == ["a", "b", "c"]
    assert requested_tasks(["--tasks=evalkit_mmlu_mini"]) == ["evalkit_mmlu_mini"]


def test_other_tasks_pass_through_untouched() -> None:
    assert lm_eval_argv(["--model", "hf", "--tasks", "hellaswag"]) == ["--model", "hf", "--tasks", "hellaswag"]


def test_lm_eval_cli_runs_evalkit_hf_on_the_bundled_mmlu(tiny_model_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ, EVALKIT_HOME=str(tmp_path / "home"))
    result = subprocess.run(
        [sys.executable, "-m", "evalkit.lm_eval", "--model", "evalkit-hf",
         "--model_args", f"pretrained={tiny_model_dir},dtype=float32", "--tasks", "evalkit_mmlu_mini",
         "--limit", "2", "--device", "cpu"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table_rows = [line for line in result.stdout.splitlines() if line.startswith("|evalkit_mmlu_mini")]
    assert table_rows and "acc" in table_rows[0]
    assert "limit: 2" in result.stdout
