"""What every stage of a run shares: the inputs, the plans, and the stage registry.

A run is planned once (:func:`evalkit.planning.plan_candidates`); the plans travel in
:class:`SuiteInputs` to every stage, which adds its section to the run and never plans
again. Each stage registers where it is defined (``@register_stage("judges")``); the
registries list the modules holding the built-in ones, in the order they run, and import
them when a suite runs, so that ``evalkit --help`` does not pay for lm-eval and the like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

from evalkit.checks import Check, CheckContext, build_check
from evalkit.data.items import Item, load_items
from evalkit.models.backend import Backend, ModelVariant
from evalkit.progress import Progress
from evalkit.prompting import PromptTemplate
from evalkit.record.results import RunResult
from evalkit.registry import DuplicateName, Registry
from evalkit.slices.spec import check_slice_fields
from evalkit.suite.config import CandidateConfig, SuiteConfig

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


RunStage = Callable[[SuiteInputs, RunResult, dict[str, Backend], Progress], None]
"""A stage: receives the inputs, the run so far, the backends and the progress reporter; adds to the run in place."""

STAGES: Registry[RunStage] = Registry("stage", builtin_modules=(
    "evalkit.benchmarks.stage",
    "evalkit.train.candidates",
    "evalkit.judges.stage",
    "evalkit.parity.checks",  # parity, then merge_agreement
    "evalkit.slices.compare",
    "evalkit.sweeps.stage",
    "evalkit.models.openai_server",
    "evalkit.contamination.stage",
))
"""Stages that run after generation and scoring, in the order of these modules (benchmarks,
training, judges, parity, merge_agreement, slices, sweep, fleet, contamination), then
plugins' stages in the order they registered."""

FINAL_STAGES: Registry[RunStage] = Registry(
    "stage", builtin_modules=("evalkit.comparison.compare", "evalkit.bars.evaluate"))
"""Last, once every metric is in (a plugin stage's too): the comparison, then the bars that read it."""


@overload
def register_stage(name: str, stage: None = None, *, final: bool = False) -> Callable[[RunStage], RunStage]: ...


@overload
def register_stage(name: str, stage: RunStage, *, final: bool = False) -> RunStage: ...


def register_stage(name: str, stage: RunStage | None = None, *,
                   final: bool = False) -> RunStage | Callable[[RunStage], RunStage]:
    """Register a run stage under ``name``: ``@register_stage("name")``, or ``register_stage("name", fn)``.

    A stage registered from outside evalkit's stage modules (a plugin's) runs after the
    built-in ones and before the comparison and the bars: metrics it adds to the
    candidates are compared and can be named by bars, like the built-in ones'.
    Registering the same stage again does nothing.

    Args:
        name: the stage's name (its section's key, by convention).
        stage: the stage function; omitted, a decorator is returned.
        final: evalkit's comparison and bars only: run after every other stage.

    Raises:
        DuplicateName: another stage is registered under ``name`` (``comparison`` and
            ``bars`` included).
    """

    def register(target: RunStage) -> RunStage:
        if final:
            FINAL_STAGES.register(name, target)
            return target
        if getattr(target, "__module__", None) not in STAGES.builtin_modules and name in FINAL_STAGES:
            raise DuplicateName(f"a stage named '{name}' is built in and runs last; choose another name")
        STAGES.register(name, target)
        return target

    return register if stage is None else register(stage)


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
