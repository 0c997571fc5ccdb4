"""Checkpoint sweeps: the forgetting curve, and the rule that picks the checkpoint to ship.

A suite's ``sweep:`` (see :mod:`evalkit.sweeps.spec`) turns every checkpoint into a
candidate on one shared base model; generation and the benchmarks run as for any
candidate. This run stage then reads, per checkpoint, the task metric and the
benchmark metric (the forgetting curve), and applies the rule:

    the best task score among the checkpoints whose benchmark drop passes the bar
    ``<benchmark> max_drop <max_drop>`` against the baseline

evaluated by :func:`evalkit.bars.evaluate.evaluate_bar`, the same code a suite's own
``max_drop`` bar runs, so "passes" means exactly what it means in ``bars:``. Ties go to
the earlier checkpoint (less training, less drift). Without a benchmark the best task
score wins. The result is ``run.sections["sweep"]``: every point of the curve, the pick
(None when no checkpoint passes) and the reason, which ``summary.json``, the report, bars
on the sweep's name and the pytest plugin all read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalkit.record.results import RunResult
from evalkit.record.run_facts import SweepPoint, SweepResult
from evalkit.stages import register_stage
from evalkit.sweeps.spec import SweepSpec, sweep_members

if TYPE_CHECKING:
    from evalkit.models.backend import Backend
    from evalkit.progress import Progress
    from evalkit.stages import SuiteInputs
    from evalkit.suite.config import SuiteConfig


def _mean(run: RunResult, candidate: str, metric: str | None) -> float | None:
    if metric is None:
        return None
    try:
        values = list(run.candidate(candidate).values(metric).values())
    except KeyError:
        return None
    return sum(values) / len(values) if values else None


def benchmark_max_drop(suite: SuiteConfig, spec: SweepSpec) -> str:
    """Return the drop the sweep tolerates: its own, else its benchmark entry's, else the suite's."""
    if spec.max_drop is not None:
        return spec.max_drop
    for entry in suite.benchmarks:
        if entry.metric == spec.benchmark and entry.max_drop:
            return str(entry.max_drop)
    return str(suite.max_drop)


def sweep_section(run: RunResult, spec: SweepSpec, members: list[tuple[str, str, int | None]],
                  max_drop: str) -> dict[str, Any]:
    """Return the ``sweep`` section (a :class:`SweepResult`'s JSON form): the curve's points, the pick, why.

    Args:
        run: the run, after its benchmarks.
        spec: the sweep.
        members: (candidate name, adapter directory, step) of every checkpoint, in order.
        max_drop: the benchmark drop the rule tolerates.
    """
    from evalkit.bars.evaluate import BarSpec, evaluate_bar

    points: list[SweepPoint] = []
    for name, adapter, step in members:
        task, bar, bar_message = _mean(run, name, spec.task_metric), None, ""
        if spec.benchmark is not None and task is not None:
            result = evaluate_bar(BarSpec.of(name, f"{spec.benchmark} max_drop {max_drop}"), run)
            bar, bar_message = result.status, result.message
        points.append(SweepPoint(candidate=name, step=step, adapter=adapter, task=task,
                                 benchmark=_mean(run, name, spec.benchmark), bar=bar, bar_message=bar_message))
    scored = [(p, p.task) for p in points if p.task is not None]
    eligible = [(p, task) for p, task in scored if spec.benchmark is None or p.bar == "passed"]
    pick = max(eligible, key=lambda found: found[1]) if eligible else None  # max keeps the first of ties
    if pick is not None:
        reason = (f"best {spec.task_metric} ({pick[1]:.4f})"
                  + (f" among {len(eligible)} of {len(scored)} checkpoints whose {spec.benchmark} drop "
                     f"passes max_drop {max_drop}" if spec.benchmark else f" of {len(scored)} checkpoints"))
    elif not scored:
        reason = f"no checkpoint was evaluated on {spec.task_metric}"
    else:
        statuses = ", ".join(f"{p.candidate}: {p.bar}" for p, _ in scored)
        reason = f"no checkpoint's {spec.benchmark} drop passes max_drop {max_drop} ({statuses})"
    return SweepResult(name=spec.name, task_metric=spec.task_metric, benchmark=spec.benchmark,
                       max_drop=max_drop, baseline=run.baseline,
                       baseline_task=_mean(run, run.baseline, spec.task_metric),
                       baseline_benchmark=_mean(run, run.baseline, spec.benchmark),
                       points=points, pick=pick[0].candidate if pick else None,
                       reason=reason).model_dump(mode="json")


@register_stage("sweep")
def run_sweep(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """The run stage: record the forgetting curve and the pick when the suite has ``sweep:``."""
    suite = inputs.suite
    spec = getattr(suite, "sweep", None)
    if spec is None:
        return
    members = [(name, str(folder), step) for name, folder, step in sweep_members(spec, suite.base_dir)]
    in_run = {c.name for c in run.candidates}
    members = [m for m in members if m[0] in in_run]
    if not members:
        return
    section = sweep_section(run, spec, members, benchmark_max_drop(suite, spec))
    run.set_section("sweep", section)
    progress.note(f"sweep {spec.name}: picked {section['pick'] or 'nothing'}: {section['reason']}")
