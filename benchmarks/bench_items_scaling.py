"""Items scaling: `evalkit run` on the mock backend at 10k / 100k / 1M items, end to end.

Run: .venv/bin/python benchmarks/bench_items_scaling.py [--sizes 10000,100000,1000000]
         [--quick] [--keep DIR] [--json OUT.json]

Each size is one fresh `evalkit run` in its own process (its own store, output folder
and peak RSS) on a generated classifier dataset: a baseline that echoes the expected
output and a candidate scripted wrong on every 7th item (wrong severity) and every 13th
(no JSON at all), scored by exact_match, json_valid, json_schema and field_accuracy,
with a slice, bars and the comparison, so every stage after generation runs at scale.

Targets: the 1M-item run within 12x the time of the 100k one (linear: 10x), and
report.html under 5 MB at 1M items (it shows the worst failures, not every item). The
wall time, peak RSS, and the sizes of summary.json, report.html, results.jsonl and the
store are printed per size, with the CPU model and flags. The ratio is judged on the
run's CPU time (user + system), which other processes on a shared machine do not
inflate; the wall-time ratio is printed beside it. ``--quick`` runs 2k and 20k.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evalkit.record.run_facts import cpu_description

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)

RUN_ONE = """
import json, resource, sys, time
from evalkit.cli import main
started, cpu_started = time.perf_counter(), time.process_time()
code = main(["run", sys.argv[1], "--store", sys.argv[2]])
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
print(json.dumps({"code": code, "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_suite(root: Path, items: int) -> Path:
    """Write a mock classifier suite of ``items`` generated items under ``root``; return the suite file."""
    source = [json.loads(line) for line in (REPO / "data" / "classifier" / "eval.jsonl").read_text().splitlines()
              if line.strip()]
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "suites" / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "suites" / "schemas" / "classifier.json").write_text(
        (REPO / "suites" / "schemas" / "classifier.json").read_text())
    with (root / "data" / "eval.jsonl").open("w") as data, (root / "suites" / "scripted.jsonl").open("w") as script:
        for index in range(items):
            record = dict(source[index % len(source)])
            record["input"] = f"{record['input']} (ticket {index})"  # every prompt distinct, as in a real set
            data.write(json.dumps(record) + "\n")
            item_id = str(index + 1)  # ids are line numbers
            if index % 13 == 0:
                script.write(json.dumps({"id": item_id, "output": "Sure! Here it is"}) + "\n")
            elif index % 7 == 0:
                wrong = dict(json.loads(record["output"]), severity="low")
                script.write(json.dumps({"id": item_id, "output": json.dumps(wrong)}) + "\n")
    suite = {
        "name": "items-scaling",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"system": "Classify the ticket as JSON.", "user": "{{ instruction }}\n\n{{ input }}",
                   "expected": "{{ output }}"},
        "generation": {"batch_size": 256},
        "candidates": [
            {"name": "base", "model": "smollm2-135m-instruct", "backend": "mock", "options": {"echo": "expected"}},
            {"name": "lora", "model": "smollm2-135m-instruct", "backend": "mock",
             "options": {"outputs": "scripted.jsonl"}},
        ],
        "baseline": "base",
        "checks": ["exact_match", "json_valid", {"json_schema": "schemas/classifier.json"}, "field_accuracy"],
        "slices": ["output.category"],
        "bars": [{"lora": "json_valid >= 0.5"}, {"lora": "exact_match >= 0.5"}],
        "output_dir": "../reports",
    }
    path = root / "suites" / "scaling.yaml"
    path.write_text(json.dumps(suite, indent=1))  # JSON is YAML
    return path


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def run_size(root: Path, items: int) -> dict[str, Any]:
    """Run the suite of ``items`` items once in a fresh process; return its time, RSS and output sizes."""
    suite = write_suite(root, items)
    store = root / "store.db"
    env = {**os.environ, "EVALKIT_HOME": str(root / "home")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN_ONE, str(suite), str(store)], capture_output=True,
                          text=True, cwd=root, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{items} items: evalkit run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    if outcome["code"] not in (0, 1):
        raise SystemExit(f"{items} items: evalkit run exited {outcome['code']}:\n{proc.stderr[-3000:]}")
    run_dirs = [p for p in (root / "reports" / "items-scaling").iterdir() if p.is_dir() and not p.name.startswith(".")]
    run_dir = max(run_dirs, key=lambda p: p.name)
    store_bytes = sum(_size(Path(f"{store}{suffix}")) for suffix in ("", "-wal", "-shm"))
    return {"items": items, "exit": outcome["code"], "seconds": outcome["seconds"],
            "cpu_seconds": outcome["cpu_seconds"], "process_seconds": wall,
            "peak_rss_mib": outcome["peak_rss_kib"] / 1024,
            "summary_bytes": _size(run_dir / "summary.json"), "report_bytes": _size(run_dir / "report.html"),
            "results_bytes": _size(run_dir / "results.jsonl"), "store_bytes": store_bytes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated item counts (default 10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="2k and 20k items only (a minute)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each size's folder under DIR")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    sizes = (tuple(int(s) for s in args.sizes.split(",")) if args.sizes
             else QUICK_SIZES if args.quick else DEFAULT_SIZES)
    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for items in sizes:
        if args.keep is not None:
            root = args.keep / f"items-{items}"
            root.mkdir(parents=True, exist_ok=False)
            row = run_size(root, items)
        else:
            with tempfile.TemporaryDirectory(prefix=f"evalkit-scaling-{items}-") as tmp:
                row = run_size(Path(tmp), items)
        rows.append(row)
        print(f"{items:>9} items: {row['seconds']:8.1f} s wall, {row['cpu_seconds']:8.1f} s CPU in evalkit run "
              f"({row['process_seconds']:.1f} s process), "
              f"peak RSS {row['peak_rss_mib']:7.0f} MiB, summary.json {row['summary_bytes'] / 1e6:6.2f} MB, "
              f"report.html {row['report_bytes'] / 1e6:6.2f} MB, results.jsonl {row['results_bytes'] / 1e6:7.1f} MB, "
              f"store {row['store_bytes'] / 1e6:7.1f} MB (exit {row['exit']})", flush=True)
    failed = False
    for smaller, larger in itertools.pairwise(rows):
        ratio = larger["cpu_seconds"] / smaller["cpu_seconds"]
        wall_ratio = larger["seconds"] / smaller["seconds"]
        growth = larger["items"] / smaller["items"]
        limit = 1.2 * growth
        verdict = "ok" if ratio <= limit else "TOO SLOW"
        failed |= ratio > limit
        print(f"{larger['items']}/{smaller['items']} items: CPU time ratio {ratio:.2f}x, wall {wall_ratio:.2f}x "
              f"(items {growth:.0f}x; target within {limit:.0f}x): {verdict}")
    for row in rows:
        if row["report_bytes"] >= 5_000_000:
            failed = True
            print(f"{row['items']} items: report.html {row['report_bytes'] / 1e6:.1f} MB: over the 5 MB target")
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu_description(), "rows": rows}, indent=2))
    print(f"own peak RSS (this driver): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
