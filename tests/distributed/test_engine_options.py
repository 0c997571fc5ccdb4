"""vLLM engine options: validated at suite load, passed to the engine and the server, part of the identity."""

from __future__ import annotations

from typing import Any

import pytest

from evalkit.errors import ConfigError
from evalkit.models.options import engine_identity, server_args, validate_engine_options
from evalkit.suite.config import load_suite
from tests.conftest import SuiteWriter


def vllm_candidate(tiny_model_dir: Any, **options: Any) -> dict[str, Any]:
    return {"name": "big", "model": str(tiny_model_dir), "backend": "vllm", "options": options}


@pytest.mark.parametrize(("options", "message"), [
    ({"tensor_parallel_size": 0}, r"options.tensor_parallel_size must be a whole number >= 1, not 0"),
    ({"pipeline_parallel_size": "2"}, r"options.pipeline_parallel_size must be a whole number"),
    ({"max_num_seqs": True}, r"options.max_num_seqs must be a whole number"),
    ({"quantization": "int3"}, r"options.quantization 'int3' is not a vLLM quantization method"),
    ({"distributed_executor_backend": "slurm"}, r"options.distributed_executor_backend must be one of mp, ray"),
    ({"enforce_eager": "yes"}, r"options.enforce_eager must be true or false"),
    ({"data_parallel_size": 2}, r"options.data_parallel_size > 1 .* serve: true"),
])
def test_bad_engine_options_fail_at_suite_load_naming_the_option(
    make_suite: SuiteWriter, tiny_model_dir: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        load_suite(make_suite(candidates=[vllm_candidate(tiny_model_dir, **options)]))
    assert "candidates" in str(error.value), "the message points at the candidate in the suite"


def test_served_candidates_take_every_option_and_remote_ones_none(make_suite: SuiteWriter, tiny_model_dir: Any) -> None:
    served = {"name": "served", "model": str(tiny_model_dir), "backend": "openai_server",
              "options": {"serve": True, "tensor_parallel_size": 2, "data_parallel_size": 2}}
    assert load_suite(make_suite(candidates=[served])).candidates[0].options["data_parallel_size"] == 2
    remote = {"name": "remote", "model": "acme/x", "backend": "openai_server",
              "options": {"base_url": "http://127.0.0.1:9/v1", "tensor_parallel_size": 2}}
    with pytest.raises(ConfigError, match="tensor_parallel_size is a vLLM engine option: it needs backend vllm"):
        load_suite(make_suite(candidates=[remote]))


def test_server_flags_follow_the_options() -> None:
    options = {"serve": True, "tensor_parallel_size": 4, "pipeline_parallel_size": 2, "data_parallel_size": 2,
               "quantization": "fp8", "max_num_seqs": 64, "enforce_eager": True, "distributed_executor_backend": "ray"}
    assert server_args(options) == [
        "--tensor-parallel-size", "4", "--pipeline-parallel-size", "2", "--data-parallel-size", "2",
        "--max-num-seqs", "64", "--distributed-executor-backend", "ray", "--quantization", "fp8", "--enforce-eager",
    ]
    assert server_args({"enforce_eager": False}) == []


def test_engine_options_are_in_the_identity_and_the_cache_key(make_suite: SuiteWriter, tiny_model_dir: Any) -> None:
    from evalkit.runner import candidate_identity, generation_cache_keys, load_inputs, plan_candidates

    suite = load_suite(make_suite(candidates=[
        vllm_candidate(tiny_model_dir),
        {**vllm_candidate(tiny_model_dir, tensor_parallel_size=2, quantization="fp8"), "name": "split"},
    ]))
    inputs = load_inputs(suite)
    plain, split = plan_candidates(inputs)
    assert candidate_identity(plain).engine == ""  # type: ignore[union-attr]
    assert candidate_identity(split).engine == '{"quantization": "fp8", "tensor_parallel_size": 2}'  # type: ignore[union-attr]
    conversation = [[{"role": "user", "content": "hi"}]]
    assert generation_cache_keys(plain, conversation, suite.generation) != generation_cache_keys(
        split, conversation, suite.generation)
    assert engine_identity("hf", {"tensor_parallel_size": 2}) == "", "other backends have no engine options"


@pytest.mark.vllm
def test_the_offline_engine_receives_the_options(tiny_model_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tensor-parallel engine cannot start on this CPU, so vllm.LLM is replaced by a recorder
    # (the one stand-in here): what matters is what evalkit asks vLLM for.
    from evalkit.errors import ModelError
    from evalkit.models.backend import ModelVariant
    from evalkit.models.sources import resolve_model
    from evalkit.models.vllm import VLLMBackend

    backend = VLLMBackend()
    received: dict[str, Any] = {}

    def record(**kwargs: Any) -> Any:
        received.update(kwargs)
        raise RuntimeError("recorded")

    monkeypatch.setattr(backend.vllm, "LLM", record)
    options = {"tensor_parallel_size": 2, "max_num_seqs": 8, "enforce_eager": True, "quantization": "fp8"}
    with pytest.raises(ModelError, match="recorded"):
        backend.engine(ModelVariant(resolve_model(str(tiny_model_dir)), options=options))
    assert {k: received[k] for k in options} == options
    assert "distributed_executor_backend" not in received, "a split engine leaves the executor to vLLM"
    received.clear()
    with pytest.raises(ModelError):
        backend.engine(ModelVariant(resolve_model(str(tiny_model_dir)), options={"enforce_eager": True}))
    assert received["distributed_executor_backend"] == "uni" and received["enforce_eager"] is True


def test_validation_returns_only_engine_options() -> None:
    assert validate_engine_options({"base_url": "x", "max_num_seqs": 4}, served=False) == {"max_num_seqs": 4}
