"""The ``contamination`` run stage: did a candidate train on the items of a benchmark it is scored on.

For every candidate that ran, the stage finds the data its weights were trained on:

1. its ``train:`` config's data file (what ``evalkit run`` trains it from);
2. else the manifest beside its weights (``evalkit-manifest.json``: the data's path and
   SHA-256; data that is gone or changed since is unknown, not clean), or, for a merged
   model not built yet, its adapter's, and for a checkpoint a sweep evaluates
   (``<adapter>/checkpoints/checkpoint-N``), the adapter's it was saved in;
3. else, for an adapter that records neither, the suite's ``dataset.train_path``
   (assumed, and the section says so);
4. else (a base model, a model directory without a manifest) nothing: its training
   data is *unknown*, which the report says; unknown is never shown as clean.

It then counts, for every benchmark of the suite (items from
:func:`evalkit.benchmarks.evaluate.benchmark_documents`) and for the eval set (the
field the leakage check compares), the items that share a word n-gram with that data
(:mod:`evalkit.contamination.ngrams`: lm-eval's 13-gram test). Each figure is computed
once per (training data SHA-256, items digest, n, min_words) and cached in
``contamination.sqlite`` in evalkit's cache directory, so a re-run reads it back and
tests nothing; the section says ``cached``.

The stage only reports: a contaminated benchmark is flagged beside its score (report,
CLI), it does not change a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

from evalkit.benchmarks.evaluate import benchmark_documents
from evalkit.contamination import ngrams as overlap
from evalkit.contamination.ngrams import (
    CandidateContamination,
    ContaminationSection,
    ContaminationSpec,
    SetOverlap,
    TrainingDataSource,
)
from evalkit.data.items import comparison_text
from evalkit.files.home import cache_home, file_sha256, json_digest
from evalkit.models.backend import Backend
from evalkit.progress import Progress
from evalkit.record.results import RunResult
from evalkit.stages import SuiteInputs, register_stage
from evalkit.store.cache import JsonCache
from evalkit.suite.config import CandidateConfig, SuiteConfig
from evalkit.train.candidates import candidate_adapter, candidate_manifest, candidate_train_config
from evalkit.train.config import read_manifest
from evalkit.train.lora import CHECKPOINTS_DIR

CACHE_FILE = "contamination.sqlite"
_KEY_VERSION = 1  # bump when the measure or the stored record changes
_DEFAULT_FIELD = "input"


def default_cache_path() -> Path:
    """Return the cache file's default place: ``contamination.sqlite`` in evalkit's cache directory."""
    return cache_home() / CACHE_FILE


def overlap_key(training_sha256: str, items_digest: str, spec: ContaminationSpec) -> str:
    """Return the cache key of one (training data, item set) comparison: everything that decides it."""
    return json_digest({"key_version": _KEY_VERSION, "training": training_sha256, "items": items_digest,
                        "n": spec.n, "min_words": spec.min_words, "examples": overlap.EXAMPLES})


def contamination_cache(path: Path | None = None) -> JsonCache[overlap.OverlapResult]:
    """Open the contamination cache: overlaps by :func:`overlap_key`, in :func:`default_cache_path` (or ``path``).

    Raises:
        StoreError: the file cannot be opened.
    """
    return JsonCache(overlap.OverlapResult, path or default_cache_path(), "contamination cache")


def _known(source: Any, path: Path, sha256: str, reason: str = "", replay: Path | None = None,
           replay_sha256: str | None = None) -> TrainingDataSource:
    if replay is not None and replay_sha256 is None:
        replay_sha256 = file_sha256(replay)
    return TrainingDataSource(status="known", source=source, path=str(path), sha256=sha256, reason=reason,
                              replay_path=str(replay) if replay is not None else None, replay_sha256=replay_sha256)


def training_source(suite: SuiteConfig, candidate: CandidateConfig) -> tuple[TrainingDataSource, str]:
    """Return a candidate's training data (see the module docstring) and the eval field to compare.

    Raises:
        ConfigError: the candidate's train config does not load.
        ModelError: a manifest exists but cannot be read.
    """
    config = candidate_train_config(suite, candidate)
    if config is not None:
        path, field_name = config.training_data_path, config.data_checks.leakage_field
        replay = config.replay_data_path
        if replay is not None and not replay.is_file():
            return TrainingDataSource(status="unknown", reason=f"its train config's replay file {replay} does not "
                                                               "exist"), field_name
        if path.is_file():
            return _known("train_config", path, file_sha256(path), replay=replay), field_name
        return TrainingDataSource(status="unknown", reason=f"its train config's data file {path} does not exist"), \
            field_name
    manifest = candidate_manifest(suite, candidate)
    if manifest is None and candidate.merged_from:  # a merged model not (re)built yet: its adapter's record
        manifest = read_manifest(suite.resolve(candidate.merged_from))
    adapter = candidate_adapter(suite, candidate)
    if manifest is None and adapter is not None and adapter.parent.name == CHECKPOINTS_DIR:
        manifest = read_manifest(adapter.parent.parent)  # a sweep's checkpoint: the adapter it was saved in
    if manifest is not None and manifest.data_path:
        path = Path(manifest.data_path)
        replay = Path(manifest.replay_path) if manifest.replay_path else None
        if replay is not None and (not replay.is_file() or file_sha256(replay) != manifest.replay_sha256):
            return TrainingDataSource(status="unknown", reason=f"the replay text its manifest records ({replay}) is "
                                                               "gone or changed since training"), manifest.leakage_field
        if path.is_file() and file_sha256(path) == manifest.data_sha256:
            return _known("manifest", path, manifest.data_sha256, replay=replay,
                          replay_sha256=manifest.replay_sha256 or None), manifest.leakage_field
        return TrainingDataSource(status="unknown", reason=f"the training data its manifest records ({path}) is "
                                                           "gone or changed since training"), manifest.leakage_field
    train_path = suite.dataset.train_path
    if adapter is not None and train_path is not None:
        path = suite.resolve(train_path)
        if path.is_file():
            return _known("suite_train_path", path, file_sha256(path),
                          "its adapter records no training data; assumed to be the suite's dataset.train_path"), \
                _DEFAULT_FIELD
    return TrainingDataSource(status="unknown", reason="no training data is known for these weights (a base "
                                                       "model's pretraining data is not recorded)"), _DEFAULT_FIELD


class _ItemSets:
    """The item sets of the run, listed once and only when a candidate's data is known."""

    def __init__(self, inputs: SuiteInputs) -> None:
        self._inputs = inputs
        self._benchmarks: dict[str, list[overlap.ItemText] | None] | None = None
        self._eval: dict[str, list[overlap.ItemText]] = {}
        self.digests: dict[int, str] = {}

    def benchmarks(self) -> dict[str, list[overlap.ItemText] | None]:
        if self._benchmarks is None:
            suite = self._inputs.suite
            self._benchmarks = {spec.metric: benchmark_documents(spec, suite.base_dir) for spec in suite.benchmarks}
        return self._benchmarks

    def eval_set(self, field_name: str) -> list[overlap.ItemText]:
        if field_name not in self._eval:
            self._eval[field_name] = [(item.id, comparison_text(item.fields, field_name))
                                      for item in self._inputs.items]
        return self._eval[field_name]

    def digest(self, items: list[overlap.ItemText]) -> str:
        if id(items) not in self.digests:
            self.digests[id(items)] = overlap.texts_digest(items)
        return self.digests[id(items)]


def _set_overlap(result: overlap.OverlapResult, cached: bool) -> SetOverlap:
    return SetOverlap(items=result.items, contaminated=result.contaminated, fraction=round(result.fraction, 6),
                      too_short=result.too_short, cached=cached,
                      examples=list(result.examples))


@register_stage("contamination")
def run_contamination(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Run stage: record each candidate's n-gram overlap with every benchmark and the eval set.

    Raises:
        BenchmarkError: a benchmark's data is missing.
        DataError: a training data file is malformed.
    """
    suite = inputs.suite
    spec = suite.contamination
    ran = [c.name for c in run.candidates if c.status == "ok"]
    if not spec.enabled or not ran:
        return
    sources = {name: training_source(suite, suite.candidate(name)) for name in ran}
    if not suite.benchmarks and all(source.status != "known" for source, _ in sources.values()):
        return  # nothing to test and no score to flag
    section = ContaminationSection(n=spec.n, min_words=spec.min_words)
    sets = _ItemSets(inputs)
    indexes: dict[str, overlap.TrainingNgrams] = {}
    with contamination_cache() as cache:
        for name in ran:
            source, field_name = sources[name]
            entry = CandidateContamination(training=source)
            section.candidates[name] = entry
            digest = source.files_digest
            if source.status != "known" or source.path is None or digest is None:
                continue
            paths = [Path(source.path), *([Path(source.replay_path)] if source.replay_path else [])]

            def measure(items: list[overlap.ItemText], paths: list[Path] = paths, digest: str = digest) -> SetOverlap:
                return _measure(cache, indexes, paths, digest, items, sets.digest(items), spec, progress)

            for metric, items in sets.benchmarks().items():
                if items is None:
                    section.unlisted[metric] = "evalkit cannot list this task's items (an lm-eval task of your own)"
                else:
                    entry.benchmarks[metric] = measure(items)
            entry.eval_set = measure(sets.eval_set(field_name))
    run.set_section("contamination", section)


def _measure(cache: JsonCache[overlap.OverlapResult], indexes: dict[str, overlap.TrainingNgrams], paths: list[Path],
             digest: str, items: list[overlap.ItemText], items_digest: str, spec: ContaminationSpec,
             progress: Progress) -> SetOverlap:
    key = overlap_key(digest, items_digest, spec)
    cached = cache.get(key)
    if cached is not None:
        return _set_overlap(cached, cached=True)
    index = _index(indexes, paths, digest, spec.n, progress.note)
    result = index.overlap(items, spec.min_words)
    cache.put(key, result)
    return _set_overlap(result, cached=False)


def _index(indexes: dict[str, overlap.TrainingNgrams], paths: list[Path], digest: str, n: int,
           note: Callable[[str], None]) -> overlap.TrainingNgrams:
    """Return the n-gram index of the training files (data, then replay), built once per run (only on a cache miss)."""
    if digest not in indexes:
        note(f"contamination: indexing the {n}-grams of {' and '.join(map(str, paths))}")
        indexes[digest] = overlap.TrainingNgrams(chain.from_iterable(overlap.training_texts(p) for p in paths), n)
    return indexes[digest]
