"""Progress without a terminal: plain lines every 10% or 30 s, with rate and ETA; pipes get them end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evalkit.progress import PlainProgress, format_rate, library_bars_silenced


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _reporter() -> tuple[PlainProgress, list[str], FakeClock]:
    lines: list[str] = []
    clock = FakeClock()
    return PlainProgress(lines.append, clock=clock, heartbeat=False), lines, clock


def test_a_quiet_task_still_prints_every_30_seconds() -> None:
    progress, lines, clock = _reporter()
    progress.start("lora: generating", 1000)
    clock.now = 29.0
    progress.tick()
    assert len(lines) == 1
    clock.now = 30.0
    progress.tick()
    assert len(lines) == 2 and "0/1000 (0%)" in lines[-1]
    clock.now = 45.0
    progress.advance(1)  # under 10%, under 30 s since the last line
    assert len(lines) == 2
    clock.now = 60.0
    progress.advance(1)
    assert len(lines) == 3 and "2/1000" in lines[-1]


def test_every_tenth_prints_a_line_with_rate_and_eta() -> None:
    progress, lines, clock = _reporter()
    progress.start("mmlu", 100)
    for _ in range(100):
        clock.now += 0.5
        progress.advance(1)
    progress.finish()
    assert len(lines) == 1 + 10 + 1
    assert lines[5] == "mmlu: 50/100 (50%), 2.00 items/s, 0m25s elapsed, ETA 0m25s"
    assert lines[-1].startswith("mmlu: done 100/100 (100%)")


def test_format_rate_before_any_item() -> None:
    assert format_rate(0, 10, 0.0) == "0/10 (0%), 0.00 items/s, 0m00s elapsed, ETA –"


def test_library_bars_are_restored_after_evalkit_returns() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    with library_bars_silenced():
        assert not transformers_logging.is_progress_bar_enabled()
    assert transformers_logging.is_progress_bar_enabled()


def test_every_tqdm_bar_is_silent_inside_evalkit_even_one_asking_to_be_shown() -> None:
    import io

    import tqdm
    from transformers.utils import logging as transformers_logging

    def drawn(**options: object) -> str:
        out = io.StringIO()
        for _ in tqdm.tqdm(range(3), file=out, mininterval=0, **options):  # type: ignore[call-overload]
            pass
        return out.getvalue()

    def drawn_positionally() -> str:
        out = io.StringIO()
        for _ in tqdm.tqdm(range(3), "desc", 3, True, out, None, 0, 10.0, None, None, False):
            pass
        return out.getvalue()

    transformers_logging.enable_progress_bar()
    assert "3/3" in drawn(disable=False)
    with library_bars_silenced():
        assert drawn(disable=False) == ""            # lm-eval's "Tokenizing inputs" passes disable=False
        assert drawn(desc="Loading weights") == ""
        assert drawn_positionally() == ""
        out = io.StringIO()
        for _ in transformers_logging.tqdm(range(3), file=out, mininterval=0):
            pass
        assert out.getvalue() == ""
    assert "3/3" in drawn(disable=False)             # the user's own bars, after evalkit returns


def test_a_piped_run_prints_progress_lines(make_suite, tiny_model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    suite = make_suite(candidates=[{"name": "base", "model": str(tiny_model_dir)}])
    summary = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, "-m", "evalkit", "run", str(suite), "--limit", "3", "--set", "generation.max_new_tokens=4",
         "--json", str(summary)],
        capture_output=True, text=True, timeout=300,  # stdout a pipe, as in `evalkit run ... | cat`
    )
    assert result.returncode in (0, 1), result.stderr
    progress_lines = [line for line in result.stderr.splitlines() if "items/s" in line and "ETA" in line]
    assert any("generating" in line and "done 3/3" in line for line in progress_lines), result.stderr
    assert "\x1b[" not in result.stderr  # no bars, no cursor movement in a log
    assert "Loading weights" not in result.stderr and "it/s]" not in result.stderr  # no library bars either
    import json

    recorded = json.loads(summary.read_text())
    assert recorded["sections"]["limit"]["items"] == 3
    assert all(c["items"] == 3 for c in recorded["candidates"] if c["status"] == "ok")
    assert any("--limit 3" in warning for warning in recorded["warnings"])
