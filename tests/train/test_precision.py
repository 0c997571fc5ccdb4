"""Training precision and layer choice: bf16 only where it is native, adapters on the chosen layers."""

from __future__ import annotations

import pytest

from evalkit.record.run_facts import cpu_has_native_bf16
from evalkit.train.config import LoraSettings
from evalkit.train.lora import lora_config, training_in_bf16


@pytest.mark.parametrize(
    ("precision", "on_cpu", "expected"),
    [("float32", True, False), ("float32", False, False), ("bfloat16", True, True), ("bfloat16", False, True),
     ("auto", False, True)],
)
def test_explicit_precision_and_auto_on_a_gpu(precision: str, on_cpu: bool, expected: bool) -> None:
    assert training_in_bf16(precision, on_cpu) is expected


def test_auto_on_a_cpu_follows_its_bf16_flags() -> None:
    # This machine's own /proc/cpuinfo decides: bf16 only with AVX512-BF16 or AMX.
    assert training_in_bf16("auto", on_cpu=True) is cpu_has_native_bf16()


def test_layers_reach_peft_as_layers_to_transform() -> None:
    assert lora_config(LoraSettings(layers=[28, 29])).layers_to_transform == [28, 29]
    assert lora_config(LoraSettings()).layers_to_transform is None
