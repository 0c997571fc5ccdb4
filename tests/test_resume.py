"""The generation cache on the real tiny model: hits, precise invalidation, --no-cache, resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.api import run_suite
from evalkit.models.hf import HFBackend
from evalkit.record.results import RunResult
from evalkit.store import RunStore, default_store_path
from tests.conftest import CLASSIFIER_ITEMS, SuiteWriter

ITEMS = [dict(row, input=f"{row['input']} (order {n})") for n in range(2) for row in CLASSIFIER_ITEMS]
# Short generations in batches of 2: every code path, little CPU.
GENERATION = {"max_new_tokens": 6, "batch_size": 2}


class GenerationSpy:
    """Records what the real HF backend is asked to generate (it still generates)."""

    def __init__(self) -> None:
        self.generated: list[str] = []
        self.loads = 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[GenerationSpy]:
    record = GenerationSpy()
    generate, load = HFBackend.generate, HFBackend.load

    def spying_generate(self: HFBackend, variant: Any, conversations: Any, *args: Any, **kwargs: Any) -> list[str]:
        record.generated += [c[-1]["content"] for c in conversations]
        return generate(self, variant, conversations, *args, **kwargs)

    def spying_load(self: HFBackend, variant: Any) -> Any:
        record.loads += 1
        return load(self, variant)

    monkeypatch.setattr(HFBackend, "generate", spying_generate)
    monkeypatch.setattr(HFBackend, "load", spying_load)
    yield record


def outputs(run: RunResult) -> dict[tuple[str, str], tuple[str, str, dict[str, float]]]:
    return {(c.name, i.item_id): (i.prompt, i.prediction, {n: s.value for n, s in i.scores.items()})
            for c in run.candidates for i in c.items}


def test_unchanged_rerun_generates_nothing_and_loads_no_model(make_suite: SuiteWriter, spy: GenerationSpy) -> None:
    suite = make_suite(ITEMS, generation=GENERATION)
    first = run_suite(suite, write=False)
    assert len(spy.generated) == len(ITEMS) and spy.loads > 0
    spy.generated.clear()
    spy.loads = 0
    second = run_suite(suite, write=False)
    assert spy.generated == [] and spy.loads == 0
    assert outputs(second) == outputs(first)
    with RunStore(default_store_path()) as store:
        assert store.count_runs() == 2 and len(store.cache) == len(ITEMS)


def test_a_changed_item_regenerates_only_itself(make_suite: SuiteWriter, spy: GenerationSpy,
                                                tiny_model_dir: Path) -> None:
    candidates = [{"name": "base", "model": str(tiny_model_dir)},
                  {"name": "terse", "model": str(tiny_model_dir), "prompt": {"system": "Answer in JSON."}}]
    first = run_suite(make_suite(ITEMS, candidates=candidates, generation=GENERATION), write=False)
    assert len(spy.generated) == 2 * len(ITEMS)
    changed = [dict(row) for row in ITEMS]
    changed[4]["input"] = "Completely different message about a refund."
    spy.generated.clear()
    second = run_suite(make_suite(changed, candidates=candidates, generation=GENERATION), write=False)
    # Once per candidate: the changed item, nothing else.
    assert len(spy.generated) == 2 and all("refund" in text for text in spy.generated)
    before, after = outputs(first), outputs(second)
    assert {key for key in before if before[key] != after[key]} <= {("base", "5"), ("terse", "5")}

    # A candidate's own prompt change regenerates that candidate only.
    spy.generated.clear()
    candidates[1]["prompt"] = {"system": "Answer in JSON only."}
    run_suite(make_suite(changed, candidates=candidates, generation=GENERATION), write=False)
    assert len(spy.generated) == len(ITEMS)

    # Generation settings are part of the key; the batch size is not.
    spy.generated.clear()
    run_suite(make_suite(changed, candidates=candidates, generation={"max_new_tokens": 6, "batch_size": 5}),
              write=False)
    assert spy.generated == []
    run_suite(make_suite(changed, candidates=candidates, generation={"max_new_tokens": 7, "batch_size": 2}),
              write=False)
    assert len(spy.generated) == 2 * len(ITEMS)


def test_no_cache_generates_everything_and_stores_nothing(make_suite: SuiteWriter, spy: GenerationSpy) -> None:
    suite = make_suite(ITEMS, generation=GENERATION)
    run_suite(suite, write=False)
    spy.generated.clear()
    run_suite(suite, write=False, cache=False)
    assert len(spy.generated) == len(ITEMS)
    with RunStore(default_store_path()) as store:
        assert len(store.cache) == len(ITEMS) and store.count_runs() == 2


CHILD = textwrap.dedent("""
    import sys, time
    from evalkit.api import run_suite
    from evalkit.models.hf import HFBackend

    generate = HFBackend.generate

    def slow_generate(self, *args, **kwargs):
        # The real generation, then a pause: it widens the window in which the test
        # kills the process (before this chunk is stored, as a crash would).
        completions = generate(self, *args, **kwargs)
        time.sleep(0.4)
        return completions

    HFBackend.generate = slow_generate
    run_suite(sys.argv[1], store=sys.argv[2], write=False)
    print("finished")
""")


def cached_count(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM generation_cache").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(make_suite: SuiteWriter, spy: GenerationSpy,
                                                                 tmp_path: Path) -> None:
    items = [dict(row, input=f"{row['input']} (copy {n})") for n in range(4) for row in CLASSIFIER_ITEMS]
    suite = make_suite(items, generation=GENERATION)  # 6 chunks of 2
    store = tmp_path / "killed.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(suite), str(store)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while cached_count(store) < 4:
            assert child.poll() is None, child.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the child stored nothing within 120 s"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    stored_at_kill = cached_count(store)
    assert 4 <= stored_at_kill < len(items)

    resumed = run_suite(suite, store=store, write=False)
    assert len(spy.generated) == len(items) - stored_at_kill  # nothing generated twice
    ids = [i.item_id for i in resumed.candidates[0].items]
    assert ids == [str(n) for n in range(1, len(items) + 1)]  # none lost, none duplicated
    with RunStore(store) as opened:
        assert opened.count_runs() == 1 and len(opened.cache) == len(items)

    uninterrupted = run_suite(suite, store=tmp_path / "fresh.db", write=False)
    assert outputs(resumed) == outputs(uninterrupted)
