"""Run every benchmark script in turn (`make bench`); each prints its own side-by-side ratios.

The figures and the exact commands that produced them are recorded in BENCHMARKS.md.
Each script can also be run on its own, with its own options (see its --help).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_store.py",
    "bench_report.py",
    "bench_pytest_plugin.py",
    "bench_mmlu.py",
    "bench_ifeval.py",
    "bench_general_text.py",
    "bench_contamination.py",
    "bench_train.py",
    "bench_vllm.py",
    "bench_scaling.py",
    "bench_view.py",
]


def main() -> int:
    failures = []
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script)])
        print(f"=== {script}: exit {code} after {time.perf_counter() - started:.0f} s ===", flush=True)
        if code != 0:
            failures.append(script)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
