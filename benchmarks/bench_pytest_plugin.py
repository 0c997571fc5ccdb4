"""What the pytest plugin costs: an idle session with and without it, and a fresh vs a reused suite run.

Run: .venv/bin/python benchmarks/bench_pytest_plugin.py

Every session is a separate `python -m pytest` process (medians of 3), measured side by
side in one run, on a tiny random Llama suite (3 items, 2 candidates, 4 bars).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from evalkit.testing.tiny_model import build_tiny_llama

REPEATS = 3


def session_seconds(directory: Path, *args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=directory,
                   env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def median_session(directory: Path, *args: str, env: dict[str, str]) -> float:
    return statistics.median(session_seconds(directory, *args, env=env) for _ in range(REPEATS))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_llama(root / "tiny")
        (root / "eval.jsonl").write_text("".join(
            json.dumps({"input": f"message {i}", "output": '{"severity": "low"}'}) + "\n" for i in range(3)))
        suite = {
            "name": "tiny", "dataset": {"path": "eval.jsonl"}, "generation": {"max_new_tokens": 4},
            "candidates": [{"name": "base", "model": str(model)},
                           {"name": "lora", "model": str(model), "prompt": {"system": "Be brief."}}],
            "checks": ["exact_match", {"regex": {"pattern": "", "name": "answered"}}],
            "output_dir": "reports",
            "bars": [{"lora": "answered == 1.0"}, {"lora": "exact_match >= 0.0"},
                     {"lora": "answered max_drop 3%"}, {"lora": "no significant regression"}],
        }
        (root / "suite.yaml").write_text(yaml.safe_dump(suite))
        (root / "test_plain.py").write_text("def test_plain():\n    assert True\n")
        env = {**os.environ, "EVALKIT_HOME": str(root / "home")}

        without = median_session(root, "test_plain.py", "-p", "no:evalkit", env=env)
        idle = median_session(root, "test_plain.py", env=env)
        fresh = median_session(root, "--evalkit", "suite.yaml", "--evalkit-no-cache", "-m", "evalkit", env=env)
        reused = median_session(root, "--evalkit", "suite.yaml", "-m", "evalkit", env=env)

    print(f"idle session, plugin disabled (-p no:evalkit): {without:6.2f} s")
    print(f"idle session, plugin loaded:                   {idle:6.2f} s  (+{idle - without:.2f} s)")
    print(f"--evalkit, fresh run (--evalkit-no-cache):     {fresh:6.2f} s")
    print(f"--evalkit, run reused from an earlier session: {reused:6.2f} s  (fresh/reused = {fresh / reused:.1f}x)")


if __name__ == "__main__":
    main()
