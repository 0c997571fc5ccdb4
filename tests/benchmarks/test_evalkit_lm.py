"""EvalkitLM answers lm-eval's requests exactly as lm-eval's own `hf` model does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model
from lm_eval.models.huggingface import HFLM

from evalkit.benchmarks.lm import (
    LOGITS_BUDGET_BYTES,
    EvalkitLM,
    build_batch,
    logit_bounded_batches,
    pack_requests,
    scoring_dtype,
)
from evalkit.errors import BenchmarkError
from evalkit.models.backend import ModelVariant
from evalkit.models.hf import HFBackend

CONTEXT = "Question: Which city is the capital of France?\nAnswer:"
REQUESTS = [
    (CONTEXT, " Paris"),
    (CONTEXT, " Rome and Berlin, which are not"),
    (CONTEXT, " A"),
    (CONTEXT, " B"),
    ("My account has been locked\nA. yes\nB. no\nAnswer:", " B"),
    ("Can you update my billing address? Thanks!", " Where is my package? The app keeps crashing."),
    ("Classify", " this customer message by severity"),
]


def _instances(pairs: list[tuple[str, str]]) -> list[Instance]:
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


@pytest.fixture(scope="module")
def lms(tiny_backend: HFBackend, tiny_variant: ModelVariant) -> tuple[EvalkitLM, HFLM]:
    ours = EvalkitLM(tiny_backend, tiny_variant, batch_size=3)
    model = tiny_backend.load(tiny_variant).model
    reference = HFLM(pretrained=model, tokenizer=tiny_backend.load(tiny_variant).tokenizer, batch_size=2,
                     device="cpu")
    return ours, reference


def test_loglikelihoods_match_lm_eval_hf(lms: tuple[EvalkitLM, HFLM]) -> None:
    ours, reference = lms
    got = ours.loglikelihood(_instances(REQUESTS), disable_tqdm=True)
    want = reference.loglikelihood(_instances(REQUESTS), disable_tqdm=True)
    assert len(got) == len(REQUESTS)
    for (value, greedy), (ref_value, ref_greedy) in zip(got, want, strict=True):
        assert value == pytest.approx(ref_value, abs=1e-4)
        assert greedy == ref_greedy
    assert len({round(v, 3) for v, _ in got}) > 3, "distinct requests give distinct scores"


def test_rolling_loglikelihood_matches_lm_eval_hf(lms: tuple[EvalkitLM, HFLM]) -> None:
    ours, reference = lms
    texts = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(["Where is my package?", "hi"])]
    assert ours.loglikelihood_rolling(texts) == pytest.approx(reference.loglikelihood_rolling(texts), abs=1e-4)


def test_shared_context_is_one_row_with_a_segment_per_continuation() -> None:
    requests = [(("c", "x"), [1, 2, 3], [7]), (("c", "y"), [1, 2, 3], [8, 9, 10]), (("d", "z"), [4], [5, 6])]
    rows = pack_requests(requests, max_length=64)
    assert [r.context for r in rows] == [[1, 2, 3], [4]]
    assert rows[0].tail == [8, 9] and rows[0].segments == {(7,): 0, (8, 9, 10): 0}
    batch = build_batch(rows, pad_id=0)
    assert batch.context_end == 3
    assert batch.input_ids.tolist() == [[1, 2, 3, 8, 9], [0, 0, 4, 5, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 0, 1, 0]]
    mask = batch.attention_mask[0, 0].int().tolist()
    assert mask[3] == [1, 1, 1, 1, 0] and mask[4] == [1, 1, 1, 1, 1]
    assert batch.attention_mask[1, 0, 2].int().tolist() == [0, 0, 1, 0, 0], "left padding is not attended"


def test_left_truncation_like_lm_eval() -> None:
    rows = pack_requests([(("c", "x"), list(range(10)), [11, 12])], max_length=5)
    assert rows[0].context == [6, 7, 8, 9] and rows[0].tail == [11]


def test_registered_with_lm_eval_and_loads_by_arguments(tiny_model_dir: Path) -> None:
    assert get_model("evalkit-hf") is EvalkitLM
    lm = EvalkitLM.create_from_arg_string(f"pretrained={tiny_model_dir},dtype=float32", {"batch_size": 4})
    assert lm.variant.dtype == "float32" and lm.max_length == 1024
    (value, _), = lm.loglikelihood(_instances([("Classify", " this")]), disable_tqdm=True)
    assert value < 0


def test_generate_until_stops_at_the_stop_string(lms: tuple[EvalkitLM, HFLM]) -> None:
    ours, _ = lms
    request = Instance("generate_until", {}, ("Classify this", {"until": ["\n"], "max_gen_toks": 8}), 0)
    (text,) = ours.generate_until([request])
    assert "\n" not in text and isinstance(text, str)


def test_bf16_only_where_native() -> None:
    assert scoring_dtype("float32", torch.device("cuda")) == "float32"
    assert scoring_dtype("auto", torch.device("cuda")) == "bfloat16"
    flags = open("/proc/cpuinfo").read()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert scoring_dtype("auto", torch.device("cpu")) == ("bfloat16" if native else "float32")


GENERATION_CONTEXTS = [
    "Classify this",
    "My account has been locked and I cannot log in",
    "hi",
    "Where is my package? The app keeps crashing.",
    "Can you update my billing address? Thanks!",
]


def _generation_requests(gen_kwargs: dict[str, object]) -> list[Instance]:
    return [Instance("generate_until", {}, (context, dict(gen_kwargs)), i)
            for i, context in enumerate(GENERATION_CONTEXTS)]


def test_generate_until_batches_give_the_one_by_one_texts(
    tiny_backend: HFBackend, tiny_variant: ModelVariant
) -> None:
    batched = EvalkitLM(tiny_backend, tiny_variant, batch_size=4)
    single = EvalkitLM(tiny_backend, tiny_variant, batch_size=1)
    calls: list[int] = []
    batched.on_progress = calls.append
    greedy = {"max_gen_toks": 6, "temperature": 0.0, "do_sample": False}
    longer = {"max_gen_toks": 9}
    requests = _generation_requests(greedy) + _generation_requests(longer)
    got = batched.generate_until(requests)
    want = [single.generate_until([request])[0] for request in requests]
    assert got == want
    # Two gen_kwargs groups of five, in batches of four: 4+1 and 4+1 requests.
    assert sorted(calls) == [1, 1, 4, 4]
    # max_gen_toks is honoured: greedy texts of 9 tokens extend those of 6 (the random model's
    # tokens are byte pieces: a text cut mid-character ends in U+FFFD, completed in the longer one).
    assert all(long.startswith(short.rstrip("\ufffd")) for short, long in zip(got[:5], got[5:], strict=True))
    assert any(len(long) > len(short) for short, long in zip(got[:5], got[5:], strict=True))


def test_generate_until_cuts_the_text_before_the_stop_string(
    tiny_backend: HFBackend, tiny_variant: ModelVariant
) -> None:
    lm = EvalkitLM(tiny_backend, tiny_variant, batch_size=4)
    (free,) = lm.generate_until(_generation_requests({"max_gen_toks": 12})[:1])
    assert len(free) >= 4, "the tiny model produces some text to cut"
    stop = free[2:4]
    (cut,) = lm.generate_until(_generation_requests({"max_gen_toks": 12, "until": [stop]})[:1])
    assert cut == free.split(stop)[0] and stop not in cut
    (as_string,) = lm.generate_until(_generation_requests({"max_gen_toks": 12, "until": stop})[:1])
    assert as_string == cut


def test_generate_until_samples_when_asked_and_refuses_unknown_gen_kwargs(
    tiny_backend: HFBackend, tiny_variant: ModelVariant
) -> None:
    lm = EvalkitLM(tiny_backend, tiny_variant, batch_size=4)
    greedy = lm.generate_until(_generation_requests({"max_gen_toks": 8}) * 2)
    assert greedy[:5] == greedy[5:], "greedy decoding repeats itself"
    torch.manual_seed(0)
    sampled = lm.generate_until(_generation_requests({"max_gen_toks": 8, "temperature": 5.0}) * 2)
    assert sampled != greedy, "a high temperature samples instead of decoding greedily"
    torch.manual_seed(0)
    do_sample_false = lm.generate_until(
        _generation_requests({"max_gen_toks": 8, "temperature": 5.0, "do_sample": False}) * 2)
    assert do_sample_false == greedy, "do_sample: false is greedy whatever the temperature"
    with pytest.raises(BenchmarkError, match=r"does not support gen_kwargs 'num_beams'.*supported: until"):
        lm.generate_until(_generation_requests({"until": ["\n"], "num_beams": 4}))
    with pytest.raises(BenchmarkError, match="max_gen_toks must be an integer"):
        lm.generate_until(_generation_requests({"max_gen_toks": "many"}))


def test_long_rolling_windows_go_a_few_at_a_time_and_one_token_answers_fill_the_batch() -> None:
    vocab = 49152
    per_batch = LOGITS_BUDGET_BYTES // (vocab * 4 * 1024)  # rows of 1,023 scored tokens that fit
    # Rolling windows: one prefix token, every document token scored.
    documents = pack_requests([("", [0], list(range(d, d + 1023))) for d in range(10)], max_length=2048)
    sizes = [len(b) for b in logit_bounded_batches(documents, 16, vocab)]
    assert sum(sizes) == 10 and max(sizes) == per_batch < 16
    # Letter answers: a long shared context, one scored token each; only batch_size bounds them.
    answers = pack_requests([("", list(range(c, c + 900)), [7]) for c in range(40)], max_length=2048)
    assert [len(b) for b in logit_bounded_batches(answers, 16, vocab)] == [16, 16, 8]
    # A row over the budget on its own is still scored, alone.
    huge = pack_requests([("", [0], list(range(d, d + 2047))) for d in range(3)], max_length=2048)
    assert [len(b) for b in logit_bounded_batches(huge, 16, 10**6)] == [1, 1, 1]
