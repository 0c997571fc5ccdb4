"""Progress within one batch: HF generation reports each row when it ends, not the batch at its end."""

from __future__ import annotations

import torch

from evalkit.usage.stage import BatchTimer

EOS = 2


def test_rows_are_reported_as_they_emit_end_of_sequence_and_the_rest_at_the_end() -> None:
    reported: list[int] = []
    timer = BatchTimer(reported.append)
    observer = timer.stopping_criteria(prompt_length=2, eos_token_id=EOS)[0]
    prompt = [[5, 6], [5, 6], [5, 6]]
    steps = [[[7], [7], [7]], [[EOS], [7], [7]], [[0], [EOS], [7]], [[0], [0], [8]]]
    tokens = [row[:] for row in prompt]
    for step in steps:
        for row, new in zip(tokens, step, strict=True):
            row.extend(new)
        stop = observer(torch.tensor(tokens), torch.zeros(3, 10))
        assert not stop.any()  # it observes; it never stops generation
    assert reported == [1, 1]  # row 0 after step 2, row 1 after step 3; row 2 still running
    assert timer.first_token_seconds is not None
    timer.finish(torch.tensor(tokens)[:, 2:], EOS)
    assert reported == [1, 1, 1] and sum(reported) == 3
    assert timer.completion_tokens == [1, 2, 4]


def test_a_one_batch_run_on_a_model_counts_every_item_once(tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    from evalkit.models.backend import ModelVariant
    from evalkit.models.hf import HFBackend
    from evalkit.models.sources import resolve_model
    from evalkit.suite.config import GenerationConfig

    advanced: list[int] = []
    backend = HFBackend()
    variant = ModelVariant(model=resolve_model(str(tiny_model_dir)))
    conversations = [[{"role": "user", "content": f"ticket {n}"}] for n in range(5)]
    outputs = backend.generate(variant, conversations, GenerationConfig(max_new_tokens=6, batch_size=16),
                               advanced.append)
    assert len(outputs) == 5 and sum(advanced) == 5 and all(step > 0 for step in advanced)
