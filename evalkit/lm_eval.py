r"""``python -m evalkit.lm_eval ...``: lm-eval's own command line, with evalkit's models and tasks.

lm-eval's CLI only knows the models its own package registers. This entry point
registers evalkit's (``evalkit-hf``; ``evalkit-vllm`` where vLLM is installed) and, when
``--tasks`` names one of evalkit's bundled MMLU tasks (``evalkit_mmlu``,
``evalkit_mmlu_mini``, ``evalkit_mmlu_cloze``, ``evalkit_mmlu_mini_cloze``), writes those
tasks over the bundled data and adds their directory as ``--include_path``; then it
hands every argument to lm-eval unchanged::

    python -m evalkit.lm_eval --model evalkit-hf --model_args pretrained=smollm2-135m-instruct \
        --tasks evalkit_mmlu_mini --limit 2
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from evalkit.benchmarks.evaluate import mmlu_task_yaml, prepare_mmlu_task
from evalkit.benchmarks.spec import MMLU_TASKS, BenchmarkSpec
from evalkit.files.home import cache_home


def register_models() -> None:
    """Import evalkit's lm-eval models (evalkit-hf, evalkit-vllm) so lm-eval's registry knows them."""
    # Imported here, not at the top: `evalkit benchmark` registers them only when lm-eval runs.
    importlib.import_module("evalkit.benchmarks.lm")


def requested_tasks(argv: Sequence[str]) -> list[str]:
    """Return the task names after ``--tasks`` (space- or comma-separated, ``--tasks=a,b`` too)."""
    names: list[str] = []
    collecting = False
    for token in argv:
        if token.startswith("--tasks="):
            names += token.split("=", 1)[1].split(",")
            collecting = False
        elif token in ("--tasks", "-t"):
            collecting = True
        elif collecting and not token.startswith("-"):
            names += token.split(",")
        else:
            collecting = False
    return [name.strip() for name in names if name.strip()]


def write_bundled_tasks(names: Sequence[str]) -> Path:
    """Write lm-eval task files named exactly ``names`` (bundled MMLU tasks) and return their directory."""
    directory = cache_home() / "benchmarks" / "lm_eval_cli"
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = BenchmarkSpec(task=name)
        prepared = prepare_mmlu_task(spec)
        formulation = spec.resolved_formulation
        assert formulation is not None, "bundled MMLU tasks only"
        config = mmlu_task_yaml(name, prepared.include_path / "data.jsonl", formulation)
        target = directory / f"{name}.yaml"
        staging = target.with_suffix(".yaml.tmp")
        staging.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        staging.replace(target)
    return directory


def lm_eval_argv(argv: Sequence[str]) -> list[str]:
    """Return the arguments for lm-eval: ``argv``, plus ``--include_path`` for bundled tasks."""
    bundled = [name for name in requested_tasks(argv) if name in MMLU_TASKS]
    args = list(argv)
    if bundled:
        args += ["--include_path", str(write_bundled_tasks(bundled))]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run lm-eval's CLI with evalkit's models registered and its bundled tasks available."""
    register_models()
    args = lm_eval_argv(sys.argv[1:] if argv is None else argv)
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm-eval", *args]
    cli_evaluate()


if __name__ == "__main__":
    main()
