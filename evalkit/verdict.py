"""The verdict of a run: the one answer ``evalkit run``, the report and the pytest plugin share.

It reads what a finished run stores (``run.sections["bars"]``, ``["comparison"]`` and
each candidate's status), so a run read back from its ``summary.json`` gets the same
verdict as the process that made it. Per candidate::

    deployable     it has counted bars, every one passed, and no metric regressed
    blocked        a bar failed, or a metric regressed beyond its allowed drop
    undecided      nothing failed, but a bar is inconclusive: the data cannot decide it
    no bars        no counted bar names it and nothing regressed (neutral, never green)
    not evaluated  the suite (``optional: true``) or the command (``--allow-missing``)
                   let it be missing, and it was
    baseline       the candidate the others are compared with (blocked if its own bar fails)

Whether an undecided bar fails the run is :func:`evalkit.bar_spec.bar_blocks` (the suite's
``inconclusive:``, default ``fail``). :attr:`RunVerdict.exit_code` is 1 when anything
blocks, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from evalkit.bar_spec import DEFAULT_INCONCLUSIVE, bar_blocks
from evalkit.judges.counted import judge_metric_not_counted
from evalkit.results import RunResult

CandidateStatus = Literal["deployable", "blocked", "undecided", "no_bars", "not_evaluated", "baseline"]


@dataclass
class CandidateGate:
    """One candidate's standing.

    Attributes:
        name: the candidate.
        status: see the module docstring.
        failed: its failed bars (their stored records).
        undecided: its inconclusive bars.
        passed: its passed bars.
        not_counted: its bars that cannot count (an uncalibrated judge, a missing candidate).
        regressions: (metric, explanation) of every metric that regressed.
        blocking: True when something of this candidate fails the run.
        note: why it was not evaluated (``not_evaluated``).
    """

    name: str
    status: CandidateStatus
    failed: list[Mapping[str, Any]] = field(default_factory=list)
    undecided: list[Mapping[str, Any]] = field(default_factory=list)
    passed: list[Mapping[str, Any]] = field(default_factory=list)
    not_counted: list[Mapping[str, Any]] = field(default_factory=list)
    regressions: list[tuple[str, str]] = field(default_factory=list)
    blocking: bool = False
    note: str = ""


@dataclass
class RunVerdict:
    """The run's verdict.

    Attributes:
        candidates: every candidate of the run, in run order.
        failures: one line per thing that fails the run (a failed or blocking
            inconclusive bar, a regressed metric).
        warnings: one line per undecided bar that does not gate (``inconclusive: warn``).
    """

    candidates: list[CandidateGate]
    failures: list[str]
    warnings: list[str]

    @property
    def passed(self) -> bool:
        """True when nothing fails the run."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """1 when something fails the run (a regression or an unmet bar), else 0."""
        return 0 if self.passed else 1

    def candidate(self, name: str) -> CandidateGate | None:
        """Return one candidate's standing, or None when it is not in the run."""
        return next((gate for gate in self.candidates if gate.name == name), None)


def _bar_line(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    prefix = "inconclusive bar" if status == "inconclusive" else "bar"
    line = f"{prefix} {record.get('candidate')}: {record.get('expression')}: {record.get('message', '')}"
    if status == "inconclusive" and record.get("items_needed"):
        line += f" (about {int(record['items_needed']):,} paired items would decide it)"
    return line


def _blocks(record: Mapping[str, Any]) -> bool:
    status = str(record.get("status") or ("passed" if record.get("passed", True) else "failed"))
    return bar_blocks(status, str(record.get("inconclusive_policy") or DEFAULT_INCONCLUSIVE))


def _regressions(run: RunResult) -> dict[str, list[tuple[str, str]]]:
    stored = run.sections.get("comparison")
    found: dict[str, list[tuple[str, str]]] = {}
    if isinstance(stored, Mapping):
        # numpy (via compare): loaded only when this compares
        from evalkit.compare import Comparison

        for candidate, metric in Comparison.from_dict(dict(stored)).regressions:
            if judge_metric_not_counted(run.sections, metric.metric) is None:  # a judge that counts
                found.setdefault(candidate, []).append((metric.metric, metric.explain()))
    return found


def run_verdict(run: RunResult) -> RunVerdict:
    """Return the verdict of a finished run (see the module docstring).

    Args:
        run: the run, with its ``bars`` and ``comparison`` sections when it has them.
    """
    bars = [b for b in run.sections.get("bars") or [] if isinstance(b, Mapping)]
    regressions = _regressions(run)
    comparison = run.sections.get("comparison") or {}
    baseline = str(comparison.get("baseline") or run.baseline) if isinstance(comparison, Mapping) else run.baseline
    names = [c.name for c in run.candidates]
    names += [name for name in regressions if name not in names]
    names += [str(b.get("candidate")) for b in bars if b.get("candidate") not in names]
    statuses = {c.name: c for c in run.candidates}
    failures: list[str] = []
    warnings: list[str] = []
    gates: list[CandidateGate] = []
    for name in dict.fromkeys(names):
        gate = CandidateGate(name, "no_bars", regressions=regressions.get(name, []))
        for record in bars:
            if record.get("candidate") != name:
                continue
            status = record.get("status") or ("passed" if record.get("passed", True) else "failed")
            {"failed": gate.failed, "inconclusive": gate.undecided, "passed": gate.passed}.get(
                str(status), gate.not_counted).append(record)
            if _blocks(record):
                failures.append(_bar_line(record))
                gate.blocking = True
            elif status == "inconclusive":
                warnings.append(_bar_line(record))
        for metric, why in gate.regressions:
            failures.append(f"regression {name}: {metric} {why}")
            gate.blocking = True
        result = statuses.get(name)
        if result is not None and result.status != "ok":
            gate.status, gate.note = "not_evaluated", result.message
        elif gate.failed or gate.regressions:
            gate.status = "blocked"
        elif gate.undecided:
            gate.status = "undecided"
        elif name == baseline:
            gate.status = "baseline"
        elif gate.passed:
            gate.status = "deployable"
        gates.append(gate)
    return RunVerdict(candidates=gates, failures=failures, warnings=warnings)
