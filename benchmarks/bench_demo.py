"""`make demo` as a new user meets it: fresh clone, install, first run, unchanged re-run.

Run: .venv/bin/python benchmarks/bench_demo.py [--reuse-venv] [--keep DIR]

Clones this repository's HEAD into a temporary directory, runs ``make install`` there
(pip's download cache stays warm: the figure is install time, not download time), then
``make demo`` twice with a fresh, private ``EVALKIT_HOME`` (so the embedded model is
converted, MMLU's data is prepared and nothing is cached at first) and prints the wall
time of each step, the CPU model and its flags, the second run's speed-up over the
first, and the demo's headline figures read from the run store. ``--reuse-venv`` links
the current ``.venv`` into the clone instead of installing (then "install" is 0 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evalkit.record.run_facts import cpu_description

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run ``command`` with output to ``log``; return its wall seconds (exit code checked by make)."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"{' '.join(command)} exited {code}; see {log}")
    return seconds


def headline(store: Path) -> list[tuple[str, str, str, float, int]]:
    """Return (suite, candidate, metric, value, n) of the latest run of each suite in ``store``."""
    with sqlite3.connect(store) as conn:
        return list(conn.execute(
            "SELECT r.suite, m.candidate, m.metric, m.value, m.n FROM run_metrics m JOIN runs r USING (run_id) "
            "WHERE r.started_at = (SELECT MAX(started_at) FROM runs WHERE suite = r.suite) ORDER BY 1, 2, 3"))


def main() -> None:
    """Clone, install, run the demo twice, print the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse-venv", action="store_true", help="link this checkout's .venv instead of installing")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    clone, home = work / "evalkit", work / "home"
    shutil.rmtree(clone, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    print(f"CPU: {cpu_description()}", flush=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True).stdout
    print(f"clone of {commit.strip()} in {clone}", flush=True)
    env = dict(os.environ, EVALKIT_HOME=str(home))
    env.pop("EVALKIT_STORE", None)
    if args.reuse_venv:
        (clone / ".venv").symlink_to(REPO / ".venv")
        # The linked venv's editable install points at this checkout; the clone's own
        # package comes first on the path, so the run uses the cloned commit even while
        # this checkout is edited.
        env["PYTHONPATH"] = str(clone)
        install = 0.0
    else:
        install = timed(["make", "install"], clone, env, work / "install.log")
    print(f"install: {install:.0f} s", flush=True)
    # With a linked venv, make must not reinstall into it (the clone's files are newer).
    demo = ["make", "-o", ".venv/.installed", "demo"] if args.reuse_venv else ["make", "demo"]
    first = timed(demo, clone, env, work / "demo-1.log")
    print(f"make demo, first run: {first:.0f} s", flush=True)
    second = timed(demo, clone, env, work / "demo-2.log")
    print(f"make demo, unchanged re-run: {second:.0f} s ({first / second:.1f}x faster)", flush=True)
    print(f"fresh clone -> report (install + first run): {install + first:.0f} s", flush=True)
    rows = headline(home / "evalkit.db")
    print(json.dumps({"install_s": round(install), "first_s": round(first), "rerun_s": round(second),
                      "metrics": [dict(zip(("suite", "candidate", "metric", "value", "n"), r, strict=True))
                                  for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
