"""evalkit_ifeval on the embedded SmolLM2 agrees with lm-eval's own ``hf`` model, prompt by prompt.

Why a slow test: the fast tests show that evalkit scores with lm-eval's checkers and sends
the chat-templated prompts, but only a real model that follows some instructions shows
that evalkit's generation (``EvalkitLM.generate_until`` on the shared backend, batched,
left-padded, cut at the end-of-turn token) gives the verdicts lm-eval's reference model
gives.

Both sides get the same settings, so a disagreement is evalkit's: float32 weights
(evalkit's fixture, and ``dtype=float32`` for ``hf``, whose default would follow the
checkpoint), greedy decoding from the task's ``gen_kwargs``, the same chat template (it
opens with ``<|im_start|>``, the BOS token, so neither side adds another), the same pad
token, and one batch of all the prompts. One batch is for time: 48 decoding steps a side
instead of 240 with batches of 8 (measured: the first 40 prompts in batches of 8 took 2.2
times the CPU time, and also agreed 40 of 40); it also left-pads the same rows to the
same width on both sides, where with smaller batches the two order equal-length prompts
differently.

The prompts: 40 of the bundled set, covering every instruction id it uses (the first 40 in
file order miss ``detectable_format:constrained_response``). 48 new tokens each: about 30
CPU-seconds a side with one torch thread (the whole test: 110 s with ``OMP_NUM_THREADS=1``
on a shared 2-core AMD EPYC at load 5; with two threads at load 6 it took 614 s, the
threads waiting on each other at every small decoding step). SmolLM2's short answers
follow every instruction of some prompts (10 of the 40) and not of others, so agreement
is not agreement on a model that fails everything.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evalkit.benchmarks.evaluate import BenchmarkTask, evaluate_benchmark, prepare_benchmark, quiet_lm_eval
from evalkit.benchmarks.lm import EvalkitLM
from evalkit.benchmarks.probes import IfevalPrompt, load_prompts, prepare_ifeval_task
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend

REPO = Path(__file__).resolve().parents[2]
PROMPTS = 40
MAX_GEN_TOKS = 48


def prompts_covering_every_instruction(count: int) -> list[IfevalPrompt]:
    """The first prompt of each instruction id, then the earliest others, ``count`` in all, in file order."""
    bundled = load_prompts()
    chosen: set[int] = set()
    for instruction in sorted({i for p in bundled for i in p.instruction_id_list}):
        if not any(instruction in bundled[n].instruction_id_list for n in chosen):
            chosen.add(next(n for n, p in enumerate(bundled) if instruction in p.instruction_id_list))
    chosen.update(n for n in range(len(bundled)) if len(chosen) < count and n not in chosen)
    return [bundled[n] for n in sorted(chosen)][:count]


def ifeval_task_over(prompts: list[IfevalPrompt], tmp_path: Path) -> BenchmarkTask:
    """evalkit's ifeval task (as the benchmark stage prepares it) over these prompts only."""
    task = prepare_benchmark(BenchmarkSpec(task="evalkit_ifeval", max_gen_toks=MAX_GEN_TOKS), REPO)
    subset = tmp_path / "prompts.jsonl"
    subset.write_text("".join(json.dumps(p.row()) + "\n" for p in prompts))
    prepared = prepare_ifeval_task(task.spec.metric, subset, max_gen_toks=MAX_GEN_TOKS)
    return dataclasses.replace(task, task_name=prepared.task_name, include_path=prepared.include_path)


@pytest.mark.slow
def test_evalkit_ifeval_agrees_with_lm_evals_hf_model_per_prompt(
    smollm2_backend: HFBackend, smollm2_variant: ModelVariant, tmp_path: Path
) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    prompts = prompts_covering_every_instruction(PROMPTS)
    every_instruction = {i for p in load_prompts() for i in p.instruction_id_list}
    assert len(prompts) == PROMPTS and {i for p in prompts for i in p.instruction_id_list} == every_instruction
    task = ifeval_task_over(prompts, tmp_path)
    assert smollm2_variant.dtype == "float32"
    ours = evaluate_benchmark(task, EvalkitLM(smollm2_backend, smollm2_variant, batch_size=PROMPTS))
    with quiet_lm_eval():
        output = simple_evaluate(
            model="hf",
            model_args=f"pretrained={smollm2_variant.model.path},dtype=float32",
            device="cpu",
            batch_size=PROMPTS,
            tasks=[task.task_name],
            task_manager=TaskManager(include_path=str(task.include_path), include_defaults=False),
            apply_chat_template=True,
            log_samples=True,
        )
    assert output is not None
    theirs = {str(s["doc"]["key"]): s for s in output["samples"][task.task_name]}
    assert set(theirs) == set(ours.items) == {str(p.key) for p in prompts}
    differ = [key for key, sample in theirs.items() if ours.items[key] != float(sample["prompt_level_strict_acc"])]
    assert len(differ) / PROMPTS <= 0.01, f"prompts {differ} scored differently, of {PROMPTS}"
    # Not agreement on a model that follows nothing, or everything: the embedded model follows some.
    assert 0 < sum(ours.items.values()) < PROMPTS
    # lm-eval's aggregates on both sides, all four metrics.
    reference = output["results"][task.task_name]
    assert set(ours.lm_eval_scores) >= {"prompt_level_strict_acc", "inst_level_strict_acc",
                                        "prompt_level_loose_acc", "inst_level_loose_acc"}
    for metric, value in ours.lm_eval_scores.items():
        assert value == pytest.approx(reference[f"{metric},none"], abs=0.03), metric
