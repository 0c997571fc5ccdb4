"""Run every benchmark script in turn (`make bench`); each prints its own side-by-side ratios.

The figures and the exact commands that produced them are recorded in BENCHMARKS.md.
Each script can also be run on its own, with its own options (see its --help).
``--quick`` passes ``--quick`` to the scripts that have a short form (QUICK), for a
smoke run of minutes instead of the full sizes.
"""

from __future__ import annotations

import argparse
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
    "bench_continuation.py",
    "bench_contamination.py",
    "bench_train.py",
    "bench_vllm.py",
    "bench_generation_chunks.py",
    "bench_scaling.py",
    "bench_view.py",
    "bench_items_scaling.py",
]
QUICK = {"bench_items_scaling.py"}
"""Scripts that take ``--quick``."""


def main() -> int:
    """Run each script; return 1 when any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short form of the scripts that have one")
    args = parser.parse_args()
    failures = []
    for script in SCRIPTS:
        print(f"\n=== {script} ===", flush=True)
        started = time.perf_counter()
        extra = ["--quick"] if args.quick and script in QUICK else []
        code = subprocess.call([sys.executable, str(HERE / script), *extra])
        print(f"=== {script}: exit {code} after {time.perf_counter() - started:.0f} s ===", flush=True)
        if code != 0:
            failures.append(script)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
