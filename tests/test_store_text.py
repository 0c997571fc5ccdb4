"""The run store takes any text a model or dataset produces: lone surrogates, NUL, markup, megabytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.store import CachedGeneration, GenerationCache, RunStore
from evalkit.testing.tiny_model import synthetic_run

HOSTILE = "\ud800 lone \udfff\x00 NUL [/] </script>" + "y" * 1_000_000


def test_hostile_text_is_stored_and_read_back(tmp_path: Path) -> None:
    run = synthetic_run(4, candidates=("base", "lora"), with_comparison=False)
    item = run.candidates[1].items[0]
    item.prediction = HOSTILE
    item.fields = {**item.fields, "note\ud800": HOSTILE}
    run.warnings.append(f"warning quoting {HOSTILE[:40]}")
    with RunStore(tmp_path / "evalkit.db") as store:
        store.save_run(run)
        loaded = store.load_run(run.run_id)
    got = loaded.candidates[1].items[0]
    # A TEXT column is UTF-8: a lone surrogate becomes U+FFFD; NUL and everything else is kept.
    assert got.prediction == HOSTILE.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")
    # JSON columns escape surrogates, so they come back exactly.
    assert got.fields["note\ud800"] == HOSTILE
    assert loaded.warnings[-1] == run.warnings[-1]


def test_the_generation_cache_takes_hostile_completions(tmp_path: Path) -> None:
    with RunStore(tmp_path / "evalkit.db") as store:
        cache = GenerationCache(store)
        cache.put_many({"k": CachedGeneration("prompt \x00", HOSTILE)})
        assert cache.get_many(["k"])["k"].completion.endswith("y" * 100)
        assert "\x00" in cache.get_many(["k"])["k"].prompt


def test_a_crafted_run_id_in_the_store_is_refused_where_it_is_read(tmp_path: Path) -> None:
    run = synthetic_run(3, candidates=("base", "lora"), with_comparison=False)
    run.run_id = "../../escape"
    with RunStore(tmp_path / "evalkit.db") as store:
        store.save_run(run)
        with pytest.raises(ConfigError, match="escape"):
            store.load_run("../../escape")
