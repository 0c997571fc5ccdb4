"""Run directories (``summary.json`` + ``results.jsonl``), read and written, and the suite as a run ran it.

:func:`load_run_dir` reads a written run directory back into a RunResult, so that
``evalkit report RUN_DIR`` rebuilds a report without the run store. Per-item
benchmark values are not written to a run directory, so they come back empty; the
benchmark and comparison *sections* are in ``summary.json`` and come back whole.

Also here:

* Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html`` (:func:`write_run`).
* The suite as a run ran it, recorded in the run, and the checks that let ``--from`` rerun it
  (:func:`record_resolved_suite`, :func:`suite_from_run`, :func:`rerun_differences`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pydantic

from evalkit.errors import ConfigError, DataError, EvalkitError
from evalkit.files.home import confined_path, file_sha256, json_text, remove_stale_partials, safe_name, staged_directory
from evalkit.files.yaml_source import json_objects
from evalkit.models.backend import device_kind, resolve_dtype, runs_locally
from evalkit.planning import candidate_identity
from evalkit.record.results import (
    CandidateIdentity,
    RunResult,
    SummaryRecord,
    item_line,
    parse_item_line,
    parse_record,
    read_section,
)
from evalkit.record.run_facts import library_versions
from evalkit.record.sections import CandidateRuntime, ResolvedSuiteSection
from evalkit.stages import SuiteInputs
from evalkit.suite.config import SuiteConfig


def is_run_dir(path: Path) -> bool:
    """Return True when ``path`` looks like a written run directory."""
    return (path / "summary.json").is_file()


def load_run_dir(path: Path) -> RunResult:
    """Load a run directory written by :func:`evalkit.record.run_dir.write_run`.

    Args:
        path: the run directory.

    Returns:
        The run, with items and scores from ``results.jsonl``.

    Raises:
        DataError: a file is missing or a line of it is malformed (the message names it).
    """
    summary_path = path / "summary.json"
    results_path = path / "results.jsonl"
    if not summary_path.is_file():
        raise DataError(f"{summary_path} not found; pass a run directory written by `evalkit run`")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{summary_path}:{exc.lineno}: not valid JSON ({exc.msg}); "
                        "the run directory is damaged, re-run the suite") from None
    run = RunResult.from_summary(parse_record(SummaryRecord, summary, str(summary_path)), run_dir=path)
    run.run_id = safe_name(run.run_id, f"{summary_path}: run_id")
    by_name = {c.name: c for c in run.candidates}
    if results_path.is_file():
        for number, data in json_objects(results_path, "the run directory is damaged, re-run the suite"):
            where = f"{results_path}:{number}"
            candidate, item = parse_item_line(data, where)
            if candidate not in by_name:
                raise DataError(f"{where}: candidate '{candidate}' is not in {summary_path}; the run "
                                "directory is damaged, re-run the suite")
            by_name[candidate].items.append(item)
    return run


# Write a run directory: ``results.jsonl``, ``summary.json`` and ``report.html``.
#
# Files are written into a hidden staging directory that is renamed into place only when
# all of them are complete (:func:`evalkit.files.home.staged_directory`), so a crashed or
# interrupted run never leaves a directory that looks finished; the staging directories a
# killed run left in the suite's folder are removed by the next run written there
# (:func:`evalkit.files.home.remove_stale_partials`). A run never replaces an existing
# directory: an id already taken gets a ``-2``, ``-3`` ... suffix.

def write_run(run: RunResult, output_root: Path, history: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the run's files under ``output_root/<suite>/<run_id>/`` and return that path.

    Args:
        run: the finished run.
        output_root: the root of run directories.
        history: earlier runs' summaries, oldest first, for the report's trend section.

    Raises:
        ConfigError: the suite name or run id would leave ``output_root``.
    """
    from evalkit.report.render import render_report

    suite_dir = confined_path(output_root, run.suite_name, "suite name")
    final = confined_path(suite_dir, run.run_id, f"run id of suite '{run.suite_name}'")
    if run.started_at:
        remove_stale_partials(suite_dir, older_than=run.started_at)
    suffix = 1
    while final.exists() or final.is_symlink():
        suffix += 1
        final = suite_dir / f"{run.run_id}-{suffix}"
    run.run_dir = final
    try:
        with staged_directory(final, kind="run", replace=False) as staging:
            with (staging / "results.jsonl").open("w", encoding="utf-8") as handle:
                for candidate in run.candidates:
                    for item in candidate.items:
                        handle.write(json_text(item_line(item, candidate.name)) + "\n")
            (staging / "summary.json").write_text(json_text(run.summary(), indent=2) + "\n", encoding="utf-8")
            (staging / "report.html").write_text(render_report(run, history=history), encoding="utf-8")
    except BaseException:
        run.run_dir = None
        raise
    return final


# The suite as a run ran it, recorded in the run; and the checks that let ``--from`` rerun it.
#
# Every run records its ``resolved_suite`` section (:class:`ResolvedSuiteSection`): the
# validated suite with every default filled in and ``--set`` / ``--limit`` applied, the
# suite file it came from (relative paths resolve against its directory), those paths
# resolved, each candidate's backend, device and dtype as resolved on this machine, the
# seeds, and the versions of evalkit and the libraries that decide outputs. It goes into
# ``summary.json`` and the store like every section, so the run directory alone says how
# the run ran.
#
# ``evalkit run --from RUN`` (:mod:`evalkit.commands.run`) builds the suite from that record,
# never from the suite file (which may have changed since), plans it, and refuses to run
# (:func:`rerun_differences`) when a candidate's identity or the dataset is no longer
# what the run used.

def _suite_file_form(config: SuiteConfig) -> dict[str, Any]:
    """Return the suite as a suite file would write it, every default filled in."""
    data = config.model_dump(mode="json")
    # Checks are written `{name: options}` (a loaded check is `{"name", "options"}`).
    data["checks"] = [{check.name: dict(check.options)} for check in config.checks]
    return data


def _resolved_paths(config: SuiteConfig) -> dict[str, str]:
    paths = {"dataset.path": config.resolve(config.dataset.path), "output_dir": config.resolve(config.output_dir)}
    if config.dataset.train_path:
        paths["dataset.train_path"] = config.resolve(config.dataset.train_path)
    if config.store:
        paths["store"] = config.resolve(config.store)
    for candidate in config.candidates:
        for field in ("adapter", "train", "merged_from"):
            value = getattr(candidate, field)
            if value:
                paths[f"candidates.{candidate.name}.{field}"] = config.resolve(value)
        model = config.resolve(candidate.model)
        if model.exists():  # a local directory or file; otherwise a name (embedded model, hub id)
            paths[f"candidates.{candidate.name}.model"] = model
    return {key: str(value) for key, value in paths.items()}


def named_file_hashes(data: Any, resolve: Callable[[str], Path]) -> dict[str, str]:
    """Return the SHA-256 of every file a suite's strings name (each string that resolves to a file).

    Args:
        data: the suite's mapping (or any part of it).
        resolve: resolves a string written in the suite to a path (:meth:`SuiteConfig.resolve`).
    """
    hashes = {}
    for text in _strings_in(data):
        path = resolve(text)
        if path.is_file():
            hashes[text] = file_sha256(path)
    return hashes


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def _runtimes(config: SuiteConfig) -> dict[str, CandidateRuntime]:
    runtimes = {}
    for candidate in config.candidates:
        if runs_locally(candidate.backend):  # device_kind imports torch: only when a local backend runs
            device = device_kind()
            runtimes[candidate.name] = CandidateRuntime(backend=candidate.backend, device=device,
                                                        dtype=resolve_dtype(candidate.dtype, device))
        else:
            runtimes[candidate.name] = CandidateRuntime(backend=candidate.backend)
    return runtimes


def resolved_suite_section(
    config: SuiteConfig,
    *,
    candidates: Sequence[str] | None = None,
    allow_missing: Sequence[str] = (),
    limit: int | None = None,
) -> ResolvedSuiteSection:
    """Return the record of ``config`` as a run runs it (``--limit`` already applied to it).

    Args:
        config: the loaded suite, with its ``--set`` overrides and ``--limit`` cuts.
        candidates: the ``--candidate`` selection (None: all).
        allow_missing: the ``--allow-missing`` candidates.
        limit: the ``--limit`` given.
    """
    data = _suite_file_form(config)
    return ResolvedSuiteSection(
        suite_file=str(config.source),
        config=data,
        overrides=list(config._overrides),
        candidates=list(candidates) if candidates else None,
        allow_missing=list(allow_missing),
        limit=limit,
        paths=_resolved_paths(config),
        files=named_file_hashes(data, config.resolve),
        runtime=_runtimes(config),
        seeds={"generation": config.generation.seed},
        versions=library_versions(),
    )


def record_resolved_suite(run: RunResult, section: ResolvedSuiteSection) -> None:
    """Add ``section`` to the run's sections (its JSON form)."""
    run.set_section("resolved_suite", section)


def suite_from_run(run: RunResult) -> tuple[SuiteConfig, ResolvedSuiteSection]:
    """Return the suite a run ran, built from its record (never from the suite file), and the record.

    Raises:
        ConfigError: the run has no record (made before evalkit recorded one) or its
            suite does not validate in this evalkit version.
        DataError: the record is damaged.
    """
    record: ResolvedSuiteSection | None = run.section("resolved_suite")
    if record is None:
        raise ConfigError(f"run {run.run_id} records no resolved suite (it was made before evalkit recorded "
                          f"one); rerun its suite file instead: evalkit run {run.suite_path}")
    try:
        config = SuiteConfig.model_validate(record.config)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(suite)"
        raise ConfigError(f"run {run.run_id}: its recorded suite does not validate in this evalkit version "
                          f"(field '{field}': {error['msg']}); rerun its suite file with the evalkit "
                          f"{record.versions.get('evalkit') or 'version'} that made it") from None
    # Relative paths resolve as they did in the run: against the suite file's directory.
    config._source = Path(record.suite_file)
    config._overrides = tuple(record.overrides)
    return config, record


def rerun_differences(run: RunResult, inputs: SuiteInputs) -> list[str]:
    """Return what differs between a run and a planned rerun of its suite (empty: it reruns exactly).

    Compared: the dataset file's hash, each candidate's device and resolved dtype, and
    each candidate the run evaluated: still evaluable, with the same identity field by
    field (model fingerprint, adapter hash, prompt hash, backend, engine options).
    """
    suite = inputs.suite
    differences = []
    record: ResolvedSuiteSection | None = run.section("resolved_suite")
    recorded: dict[str, CandidateRuntime] = record.runtime if record is not None else {}
    for name, now in _runtimes(suite).items():
        was = recorded.get(name)
        if name in inputs.plans and was is not None and was != now:
            differences.append(f"candidate {name}: runs on {now.device} in {now.dtype} here, the run used "
                               f"{was.device} in {was.dtype}")
    dataset = suite.resolve(suite.dataset.path)
    current = file_sha256(dataset) if dataset.is_file() else "missing"
    if run.dataset_hash and current != run.dataset_hash:
        differences.append(f"dataset {dataset}: hash {current[:12]} is not the run's {run.dataset_hash[:12]}")
    for candidate in run.candidates:
        if candidate.status != "ok" or candidate.identity is None:
            continue
        plan = inputs.plans.get(candidate.name)
        identity = candidate_identity(plan) if plan is not None else None
        if identity is None:
            reason = plan.skip_reason if plan is not None else "not planned"
            differences.append(f"candidate {candidate.name}: cannot be evaluated now ({reason})")
            continue
        for field in fields(CandidateIdentity):
            was, now = getattr(candidate.identity, field.name), getattr(identity, field.name)
            if was != now:
                differences.append(f"candidate {candidate.name}: {field.name} {_short(now)} is not the run's "
                                   f"{_short(was)}")
    return differences


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else repr(text)


def version_changes(run: RunResult) -> list[str]:
    """Return the library versions that differ from the run's (a warning: outputs may differ)."""
    record: ResolvedSuiteSection | None = run.section("resolved_suite")
    if record is None:
        return []
    was = record.versions
    now = library_versions()
    return [f"{name} {now.get(name) or 'absent'} (the run had {version or 'absent'})"
            for name, version in was.items() if name in now and now[name] != version]


def same_as_stored(summary: Mapping[str, Any], planned: SuiteInputs) -> bool:
    """Whether a stored run (its summary) is what running the planned suite now would make.

    True when the run ran the whole suite (no ``--candidate``, ``--limit``,
    ``--allow-missing``) with the same resolved config apart from its bars (bars are checked
    again on a reused run), the same named files' contents, the same device, dtype and
    library versions, and every candidate with the same identity. A run recorded before
    runs carried a resolved suite is never the same.
    """
    try:
        record: ResolvedSuiteSection | None = read_section(summary.get("sections", {}), "resolved_suite")
    except EvalkitError:
        return False
    if record is None:
        return False
    current = resolved_suite_section(planned.suite)
    if record.candidates is not None or record.limit is not None or record.allow_missing:
        return False
    if (_without_bars(record.config), record.files, record.runtime, record.versions) != (
            _without_bars(current.config), current.files, current.runtime, current.versions):
        return False
    identities = {c.get("name"): (c.get("status"), c.get("identity")) for c in summary.get("candidates", [])}
    planned_identities = {}
    for name, plan in planned.plans.items():
        identity = candidate_identity(plan)
        planned_identities[name] = ("ok", vars(identity)) if identity else ("skipped", None)
    return identities == planned_identities


def _without_bars(config: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "bars"}
