"""Run metadata: what exactly was evaluated, by whom, from which data, and how fast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from evalkit.record.results import RunResult


@dataclass
class CandidateMetadata:
    """One candidate's identity and throughput."""

    name: str
    status: str
    model: str
    fingerprint: str
    adapter: str
    adapter_hash: str
    backend: str
    prompt_hash: str
    items: int
    seconds: str
    items_per_second: str


@dataclass
class RunMetadata:
    """The run as a whole."""

    rows: list[tuple[str, str]]
    candidates: list[CandidateMetadata]


def _duration(started: str, finished: str) -> str:
    try:
        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return "–"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.0f} s"


def run_metadata(run: RunResult) -> RunMetadata:
    """Return the metadata rows and per-candidate identities."""
    rows = [
        ("suite", f"{run.suite_name} ({run.suite_path})" if run.suite_path else run.suite_name),
        ("run id", run.run_id),
        ("started", run.started_at),
        ("finished", run.finished_at or "–"),
        ("duration", _duration(run.started_at, run.finished_at) if run.finished_at else "–"),
        ("dataset SHA-256", run.dataset_hash or "–"),
        ("evalkit version", run.evalkit_version or "–"),
        ("command", run.command or "–"),
    ]
    candidates = []
    for c in run.candidates:
        identity = c.identity
        candidates.append(CandidateMetadata(
            name=c.name, status=c.status if c.status == "ok" else f"skipped: {c.message}",
            model=identity.model_source if identity else "–",
            fingerprint=identity.model_fingerprint if identity else "–",
            adapter=(identity.adapter or "–") if identity else "–",
            adapter_hash=(identity.adapter_hash or "–") if identity else "–",
            backend=identity.backend if identity else "–",
            prompt_hash=identity.prompt_hash if identity else "–",
            items=len(c.items), seconds=f"{c.seconds:.1f}",
            items_per_second=f"{len(c.items) / c.seconds:.2f}" if c.seconds > 0 and c.items else "–",
        ))
    return RunMetadata(rows, candidates)
