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

Whether an undecided bar fails the run is :func:`evalkit.bars.spec.bar_blocks` (the suite's
``inconclusive:``, default ``fail``). :attr:`RunVerdict.exit_code` is 1 when anything
blocks, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from evalkit.bars.spec import BarResult
from evalkit.judges.section import judge_metric_not_counted
from evalkit.record.results import RunResult, bars_section, compared_baseline, comparison_section

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
    failed: list[BarResult] = field(default_factory=list)
    undecided: list[BarResult] = field(default_factory=list)
    passed: list[BarResult] = field(default_factory=list)
    not_counted: list[BarResult] = field(default_factory=list)
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

    def headline(self) -> str:
        """Return the run's verdict in one line, whatever it is: outcome, exit code, bars, each candidate.

        ``PASSED (exit 0): 3 bars: 3 passed; base baseline, lora deployable``
        """
        counts = {"passed": 0, "failed": 0, "undecided": 0, "not counted": 0}
        for gate in self.candidates:
            for label, records in (("passed", gate.passed), ("failed", gate.failed), ("undecided", gate.undecided),
                                   ("not counted", gate.not_counted)):
                counts[label] += len(records)
        total = sum(counts.values())
        bars = (f"{total} bar{'s' * (total != 1)}: " + ", ".join(f"{n} {label}" for label, n in counts.items() if n)
                if total else "no bars")
        regressed = sum(len(gate.regressions) for gate in self.candidates)
        regressions = f", {regressed} metric{'s' * (regressed != 1)} regressed" if regressed else ""
        standing = ", ".join(f"{gate.name} {gate.status.replace('_', ' ')}" for gate in self.candidates)
        return f"{'PASSED' if self.passed else 'FAILED'} (exit {self.exit_code}): {bars}{regressions}; {standing}"


def _bar_line(record: BarResult) -> str:
    prefix = "inconclusive bar" if record.status == "inconclusive" else "bar"
    line = f"{prefix} {record.candidate}: {record.expression}: {record.message}"
    if record.status == "inconclusive" and record.items_needed:
        line += f" (about {record.items_needed:,} paired items would decide it)"
    return line


def _regressions(run: RunResult) -> dict[str, list[tuple[str, str]]]:
    comparison = comparison_section(run.sections)
    judges = run.section("judges") or {}
    found: dict[str, list[tuple[str, str]]] = {}
    for candidate, metric in comparison.regressions if comparison is not None else []:
        if judge_metric_not_counted(judges, metric.metric) is None:  # a judge that counts
            found.setdefault(candidate, []).append((metric.metric, metric.explain()))
    return found


def run_verdict(run: RunResult) -> RunVerdict:
    """Return the verdict of a finished run (see the module docstring).

    Args:
        run: the run, with its ``bars`` and ``comparison`` sections when it has them.
    """
    bars = bars_section(run.sections)
    regressions = _regressions(run)
    baseline = compared_baseline(run.sections, run.baseline)
    names = [c.name for c in run.candidates]
    names += [name for name in regressions if name not in names]
    names += [b.candidate for b in bars if b.candidate not in names]
    statuses = {c.name: c for c in run.candidates}
    failures: list[str] = []
    warnings: list[str] = []
    gates: list[CandidateGate] = []
    for name in dict.fromkeys(names):
        gate = CandidateGate(name, "no_bars", regressions=regressions.get(name, []))
        for record in bars:
            if record.candidate != name:
                continue
            {"failed": gate.failed, "inconclusive": gate.undecided, "passed": gate.passed}.get(
                record.status, gate.not_counted).append(record)
            if record.blocks:
                failures.append(_bar_line(record))
                gate.blocking = True
            elif record.status == "inconclusive":
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
