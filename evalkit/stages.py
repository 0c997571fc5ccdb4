"""What every stage of a run shares: the inputs, the plans, and the stage registry.

A run is planned once (:func:`evalkit.planning.plan_candidates`); the plans travel in
:class:`SuiteInputs` to every stage, which adds its section to the run and never plans
again. Stages are lazy registry entries, imported when a suite runs, so that
``evalkit --help`` does not pay for lm-eval and the like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalkit.checks import Check, CheckContext, build_check
from evalkit.config import CandidateConfig, SuiteConfig
from evalkit.data.items import Item, load_items
from evalkit.models.backend import Backend, ModelVariant
from evalkit.progress import Progress
from evalkit.prompting import PromptTemplate
from evalkit.registry import DuplicateName, Registry
from evalkit.results import RunResult
from evalkit.slice_spec import check_slice_fields

if TYPE_CHECKING:
    from evalkit.executors import Executor

__all__ = ["STAGES", "CandidatePlan", "RunStage", "SuiteInputs", "import_stage_modules", "load_inputs",
           "register_stage"]


@dataclass
class CandidatePlan:
    """A candidate resolved and ready to run, or the reason it is skipped."""

    config: CandidateConfig
    variant: ModelVariant | None
    template: PromptTemplate
    skip_reason: str = ""


@dataclass
class SuiteInputs:
    """What every stage of a run reads: the suite, its items, its checks and the candidates' plans.

    ``plans`` holds every planned candidate by name once the run has planned them, so a
    stage reuses the plan (model, adapter, prompt) instead of resolving it again.
    """

    suite: SuiteConfig
    items: list[Item]
    train_items: list[Item]
    checks: list[Check]
    plans: dict[str, CandidatePlan] = field(default_factory=dict)
    executor: Executor | None = None
    """The run's executor (a Ray cluster) when it has one: stages may send work to its workers."""


# Stages that run after generation and scoring (benchmarks, judges, parity...), in this
# order. Each receives the inputs, the run so far, the backends and the progress
# reporter, and adds to the run in place. They are lazy entries, imported when a suite
# runs, so that `evalkit --help` does not pay for lm-eval and the like; a new stage is
# one entry here (or `register_stage` from a module of yours).
RunStage = Callable[[SuiteInputs, RunResult, dict[str, Backend], Progress], None]
STAGES: Registry[RunStage] = Registry("stage", {
    "benchmarks": "evalkit.benchmarks.stage:run_benchmarks",
    "training": "evalkit.train.candidates:record_training",
    "judges": "evalkit.judges.stage:run_judges",
    "parity": "evalkit.parity:parity_stage",
    "merge_agreement": "evalkit.merge_agreement:record_merge_agreement",
    "slices": "evalkit.slices:run_slices",
    "sweep": "evalkit.sweep:run_sweep",
    "fleet": "evalkit.models.fleet_stage:record_fleets",
    "contamination": "evalkit.contamination:run_contamination",
})

# Last, once every metric is in (a registered stage's too): the comparison, then the bars
# that read it. Kept apart from STAGES so that a stage registered later still runs before them.
FINAL_STAGES: Registry[RunStage] = Registry("stage", {
    "comparison": "evalkit.compare:comparison_stage",
    "bars": "evalkit.bars:bars_stage",
})


def register_stage(name: str, stage: RunStage) -> None:
    """Add a stage that runs after the built-in ones and before the comparison and the bars.

    Metrics it adds to the candidates are compared and can be named by bars, like the
    built-in ones'. Registering the same stage again does nothing.

    Raises:
        DuplicateName: another stage is registered under ``name`` (``comparison`` and
            ``bars`` included).
    """
    if name in FINAL_STAGES:
        raise DuplicateName(f"a stage named '{name}' is built in and runs last; choose another name")
    STAGES.register(name, stage)


def import_stage_modules() -> list[tuple[str, RunStage]]:
    """Import every stage's module and return (name, stage) in the order they run."""
    return STAGES.items() + FINAL_STAGES.items()


def load_inputs(suite: SuiteConfig) -> SuiteInputs:
    """Load the suite's items, training items and checks.

    Raises:
        DataError: a data file is missing or malformed.
        ConfigError: a check's options are invalid.
    """
    dataset = suite.dataset
    items = load_items(suite.resolve(dataset.path), dataset.id_field, dataset.limit)
    train_items: list[Item] = []
    if dataset.train_path is not None:
        train_items = load_items(suite.resolve(dataset.train_path))
    # A slice field no item has is a typo: refused before anything runs.
    check_slice_fields(suite.slices, items, str(suite.source), str(suite.resolve(dataset.path)))
    context = CheckContext(base_dir=suite.base_dir, source=f"{suite.source}: checks")
    checks: list[Check] = [build_check(spec.name, spec.options, context) for spec in suite.checks]
    return SuiteInputs(suite=suite, items=items, train_items=train_items, checks=checks)
