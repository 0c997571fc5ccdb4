"""The one reader of the CPU's model and flags."""

from __future__ import annotations

from pathlib import Path

from evalkit.record import run_facts as machine


def test_native_bf16_follows_the_flags_in_proc_cpuinfo() -> None:
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    assert machine.cpu_flags() == flags
    assert machine.cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_the_description_names_the_model_and_only_flags_present() -> None:
    line = machine.cpu_description()
    assert line.startswith(machine.cpu_model())
    listed = line.split("flags: ", 1)[1].split()
    assert listed == ["none", "of", *machine.SPEED_FLAGS] or set(listed) <= machine.cpu_flags()
