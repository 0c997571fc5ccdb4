"""What changed between two runs, per compared pair: the identity diff ``evalkit compare A B`` shows first.

A pair compared across runs (:func:`evalkit.comparison.compare.compare_runs`) may differ in more
than its metrics: another model or adapter, another prompt, other generation settings,
other data, other library versions. :func:`identity_diff` lists every recorded fact
that differs, from what each run recorded: the candidate's identity (model
fingerprint, adapter hash, prompt hash, backend, engine), the run's dataset hash and
evalkit version, and its ``resolved_suite`` section (generation settings, the
candidate's device, dtype and options, named files' hashes, library versions, and the
prompt templates, of which it gives a unified diff). A run made before runs recorded
their resolved suite has only the first; what it cannot say is named in the notes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from evalkit.comparison.result import IdentityChange, IdentityDiff, IdentityKind
from evalkit.record.results import RunResult
from evalkit.record.run_records import CandidateIdentity
from evalkit.record.sections import ResolvedSuiteSection

__all__ = ["identity_diff", "prompt_text", "shown_value"]

_IDENTITY_KINDS: dict[str, IdentityKind] = {
    "model_source": "paths", "model_fingerprint": "model", "adapter": "paths", "adapter_hash": "adapter",
    "backend": "model", "prompt_hash": "prompt", "engine": "model",
}
_KIND_WORDS: dict[IdentityKind, str] = {
    "model": "model", "adapter": "adapter", "prompt": "prompt", "generation": "generation settings",
    "data": "data", "versions": "versions", "paths": "model/adapter paths",
}
_PROMPT_PARTS = ("system", "user", "expected", "few_shot")


def prompt_text(config: Mapping[str, Any], candidate: str) -> str | None:
    """Return a candidate's prompt templates as one text, from a recorded suite config; None if absent.

    The suite's ``prompt`` with the candidate's ``prompt:`` override applied (each part
    it sets replaces the suite's, as :func:`evalkit.prompting.prompt_for_candidate` does);
    the few-shot examples themselves are not part of it (their training file's hash is).
    """
    suite_prompt = config.get("prompt")
    if not isinstance(suite_prompt, Mapping):
        return None
    parts = dict(suite_prompt)
    for entry in config.get("candidates") or []:
        if isinstance(entry, Mapping) and entry.get("name") == candidate:
            override = entry.get("prompt")
            parts.update({k: v for k, v in (override or {}).items() if v is not None})
    return "".join(f"[{part}]\n{'(none)' if parts.get(part) is None else parts[part]}\n" for part in _PROMPT_PARTS)


def shown_value(value: str | None) -> str:
    """Return a recorded value as the text and the report show it: a SHA-256 cut to 12 digits, None as "absent"."""
    if value is None:
        return "absent"
    is_digest = len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    return value[:12] if is_digest else value


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)


def _record(run: RunResult) -> ResolvedSuiteSection | None:
    record: ResolvedSuiteSection | None = run.section("resolved_suite")
    return record


def _settings(run: RunResult, record: ResolvedSuiteSection | None, name: str) -> dict[str, tuple[IdentityKind, Any]]:
    """Return field -> (kind, value) of what a run recorded about how ``name`` ran, beyond its identity."""
    found: dict[str, tuple[IdentityKind, Any]] = {"dataset_hash": ("data", run.dataset_hash or None),
                                                  "versions.evalkit": ("versions", run.evalkit_version or None)}
    if record is None:
        return found
    found.update({f"generation.{key}": ("generation", value)
                  for key, value in (record.config.get("generation") or {}).items()})
    entry: Mapping[str, Any] = next((c for c in record.config.get("candidates") or [] if c.get("name") == name), {})
    found.update({f"candidate.{key}": ("generation", entry.get(key)) for key in ("dtype", "options", "constrain")})
    runtime = record.runtime.get(name)
    found.update({"runtime.device": ("generation", runtime.device if runtime else None),
                  "runtime.dtype": ("generation", runtime.dtype if runtime else None),
                  "limit": ("data", record.limit)})
    found.update({f"files.{file}": ("data", digest) for file, digest in record.files.items()})
    found.update({f"versions.{library}": ("versions", version) for library, version in record.versions.items()})
    return found


def identity_diff(before: RunResult, baseline: str, after: RunResult, candidate: str) -> IdentityDiff:
    """Return what differs between ``baseline`` of run ``before`` and ``candidate`` of run ``after``.

    Raises:
        KeyError: a candidate is not in its run (the caller has checked both).
        DataError: a run's resolved suite record is damaged.
    """
    changes: list[IdentityChange] = []
    notes: list[str] = []
    was, now = before.candidate(baseline).identity, after.candidate(candidate).identity
    if was is None or now is None:
        missing = before if was is None else after
        notes.append(f"run {missing.run_id} records no identity for its candidate: model, adapter and "
                     "prompt hashes not compared")
    else:
        for item in fields(CandidateIdentity):
            old, new = getattr(was, item.name), getattr(now, item.name)
            if old != new:
                changes.append(IdentityChange(_IDENTITY_KINDS[item.name], item.name, _text(old), _text(new)))
    records = _record(before), _record(after)
    old_settings, new_settings = _settings(before, records[0], baseline), _settings(after, records[1], candidate)
    for key in dict.fromkeys([*old_settings, *new_settings]):
        if (key not in old_settings or key not in new_settings) and None in records:
            continue  # on one side only because the other run records less: not a change
        kind = (old_settings.get(key) or new_settings[key])[0]
        old, new = old_settings.get(key, (kind, None))[1], new_settings.get(key, (kind, None))[1]
        if old != new:
            changes.append(IdentityChange(kind, key, _text(old), _text(new)))
    texts = [prompt_text(record.config, name) if record is not None else None
             for record, name in zip(records, (baseline, candidate), strict=True)]
    prompt_diff = ""
    for run, record in zip((before, after), records, strict=True):
        if record is None:
            notes.append(f"run {run.run_id} records no resolved suite (made before evalkit recorded one): "
                         "prompt text not recorded; generation settings, named files and library versions "
                         "not compared")
    if texts[0] is not None and texts[1] is not None and texts[0] != texts[1]:
        prompt_diff = "".join(difflib.unified_diff(
            texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
            fromfile=f"run {before.run_id}: {baseline} prompt", tofile=f"run {after.run_id}: {candidate} prompt"))
    elif texts[0] is not None and any(c.field == "prompt_hash" for c in changes):
        notes.append("the prompt templates are the same: the few-shot examples differ (the training data changed)")
    kinds = [kind for kind in _KIND_WORDS if any(change.kind == kind for change in changes)]
    return IdentityDiff(summary=_summary(kinds), changes=changes, prompt_diff=prompt_diff, notes=notes)


def _summary(kinds: list[IdentityKind]) -> str:
    if not kinds:
        return "identity unchanged"
    words = [_KIND_WORDS[kind] for kind in kinds]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed} changed"
