"""`evalkit view` on a big store: the runs page and a diff page, timed over real HTTP, and the server's peak memory.

Targets (issue: the review loop): on a store of 100 runs x 10,000 items, the runs page
answers in < 300 ms and a diff page in < 1 s on the 2-core machine; memory stays
bounded (every page is paginated with SQL LIMIT/OFFSET; the diff loads scores only).

The store: ``--sources`` distinct synthetic runs (:func:`evalkit.testing.tiny_model.synthetic_run`,
base and lora, the suite's real checks) saved through ``RunStore.save_run``, then copied
inside SQLite under new ids and start times up to ``--runs`` runs (a copy costs seconds
where scoring 10,000 items again costs a minute; neighbours in time come from different
sources, so a diff of two adjacent runs has flipped items). The server is the real
command (``python -m evalkit view``) in its own process; its peak resident memory is
its ``VmHWM``.

Usage::

    .venv/bin/python benchmarks/bench_view.py                       # 100 runs x 10,000 items
    .venv/bin/python benchmarks/bench_view.py --runs 20 --items 2000 # smaller, faster
    .venv/bin/python benchmarks/bench_view.py --store /tmp/view.db  # keep (and reuse) the store
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from evalkit.store import RunStore
from evalkit.testing.tiny_model import synthetic_run

SUITE = "classifier"
CANDIDATES = ("base", "lora")
RUN_COLUMNS = ("suite, suite_path, baseline, config_hash, dataset_hash, git_commit, finished_at, evalkit_version,"
               " command, sections_json, warnings_json, thresholds_json")


def cpu_line() -> str:
    """The CPU model and its SIMD flags, as every benchmark prints them."""
    info = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    simd = [f for f in flags if f.startswith(("avx", "sse4", "amx", "fma"))]
    return f"CPU: {model}, {os.cpu_count()} cores, flags: {' '.join(simd)}"


def run_id(number: int) -> str:
    return f"20261001-{number:06d}"


def build_store(path: Path, runs: int, items: int, sources: int) -> float:
    """Store ``sources`` scored runs, copy them up to ``runs`` runs; return the seconds it took."""
    started = time.perf_counter()
    with RunStore(path) as store:
        for seed in range(sources):
            run = synthetic_run(items, CANDIDATES, seed=seed, judged_items=min(items, 500), with_comparison=False)
            run.run_id, run.suite_name = f"source-{seed}", SUITE
            store.save_run(run)
            print(f"  source run {seed + 1}/{sources} stored ({time.perf_counter() - started:.0f} s)", flush=True)

        def copy(conn: object, number: int) -> None:
            source, new = f"source-{number % sources}", run_id(number)
            day = f"2026-{10 + number // 28 % 3:02d}-{1 + number % 28:02d}T{number % 24:02d}:00:00+00:00"
            execute = conn.execute  # type: ignore[attr-defined]
            execute(f"INSERT INTO runs (run_id, started_at, {RUN_COLUMNS}) SELECT ?, ?, {RUN_COLUMNS} FROM runs"
                    " WHERE run_id = ?", (new, day, source))
            for table, columns in (
                ("candidates", "name, position, status, message, identity_json, model_fingerprint, adapter_hash,"
                               " seconds"),
                ("item_results", "candidate, position, item_id, fields_json, prompt, expected, prediction,"
                                 " scores_json"),
                ("item_values", "candidate, metric, item_id, value"),
                ("run_metrics", "candidate, metric, value, n"),
            ):
                execute(f"INSERT INTO {table} (run_id, {columns}) SELECT ?, {columns} FROM {table}"
                        " WHERE run_id = ?", (new, source))

        for number in range(runs):
            store.write(lambda conn, n=number: copy(conn, n))
            if (number + 1) % 10 == 0:
                print(f"  {number + 1}/{runs} runs ({time.perf_counter() - started:.0f} s)", flush=True)
        # The sources were only templates: the store holds exactly ``runs`` runs.
        store.write(lambda conn: [conn.execute(f"DELETE FROM {t} WHERE run_id LIKE 'source-%'")
                                  for t in ("runs", "candidates", "item_results", "item_values", "run_metrics")])
    return time.perf_counter() - started


def timed(client: httpx.Client, path: str, repeats: int) -> tuple[float, float, int]:
    """Return the first request's seconds, the median of the next ``repeats``, and the page's bytes."""
    started = time.perf_counter()
    first = client.get(path)
    cold = time.perf_counter() - started
    if first.status_code != 200:
        raise SystemExit(f"{path}: HTTP {first.status_code}: {first.text[:300]}")
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        warm.append(time.perf_counter() - started)
    return cold, statistics.median(warm), len(first.content)


def peak_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    """Build (or reuse) the store, serve it, time the pages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=4, help="distinct scored runs the store is copied from")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, help="store file to build (kept) or reuse; default a temporary one")
    args = parser.parse_args()
    print(cpu_line())
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or Path(scratch) / "view.db"
        if store.exists():
            print(f"reusing {store}")
        else:
            print(f"building {args.runs} runs x {args.items} items x {len(CANDIDATES)} candidates in {store}")
            print(f"built in {build_store(store, args.runs, args.items, args.sources):.0f} s, "
                  f"{store.stat().st_size / 2**20:.0f} MiB")
        with RunStore(store, read_only=True) as opened:
            ids = [r.run_id for r in opened.list_runs(SUITE)][::-1]  # newest first
            items = opened.read(lambda c: c.execute("SELECT COUNT(*) FROM item_results WHERE run_id = ?"
                                                    " AND candidate = 'lora'", (ids[0],)).fetchone()[0])
        print(f"store: {len(ids)} runs, {items} items per candidate")
        server = subprocess.Popen([sys.executable, "-m", "evalkit", "view", "--store", str(store), "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split(" at ")[1].strip()
            client = httpx.Client(base_url=url, timeout=120)
            print(f"server peak memory after start: {peak_kib(server.pid) / 1024:.0f} MiB")
            pages = [
                ("runs page (/suites/classifier, 50 of the runs)", f"/suites/{SUITE}", 0.3),
                ("runs page 2", f"/suites/{SUITE}?page=1", 0.3),
                ("front page (every suite, charts)", "/", None),
                ("diff page (two adjacent runs, lora vs lora, flipped items)",
                 f"/diff?a={ids[1]}&b={ids[0]}&ca=lora&cb=lora", 1.0),
                ("diff page, every paired item, page 100",
                 f"/diff?a={ids[1]}&b={ids[0]}&ca=lora&cb=lora&items=all&page=100", 1.0),
                ("diff page, regex on the outputs",
                 f"/diff?a={ids[1]}&b={ids[0]}&ca=lora&cb=lora&items=all&q=urgent&where=output", 1.0),
                ("items page (failing json_valid)", f"/runs/{ids[0]}/items?candidate=lora&failing=1&metric=json_valid",
                 None),
                ("diff page, another pair (not cached)", f"/diff?a={ids[3]}&b={ids[2]}&ca=base&cb=lora", 1.0),
            ]
            print(f"\n{'page':<62} {'first':>8} {'median':>8} {'KiB':>7}  target")
            missed = []
            for name, path, target in pages:
                cold, warm, size = timed(client, path, args.repeats)
                verdict = "" if target is None else (f"< {target * 1000:.0f} ms " +
                                                     ("met" if max(cold, warm) < target else "MISSED"))
                if target is not None and max(cold, warm) >= target:
                    missed.append(name)
                print(f"{name:<62} {cold * 1000:>6.0f}ms {warm * 1000:>6.0f}ms {size / 1024:>7.0f}  {verdict}",
                      flush=True)
            print(f"\nserver peak memory (VmHWM): {peak_kib(server.pid) / 1024:.0f} MiB; "
                  f"store file {store.stat().st_size / 2**20:.0f} MiB")
            print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    if missed:
        print(f"targets missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
