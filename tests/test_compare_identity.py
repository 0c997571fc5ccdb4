"""`evalkit compare A B` says what changed between the two runs, and `deployable` follows the one rule.

Real runs on the registered mock backend (it echoes each item's expected output, so the
metrics are equal whatever the prompt; nothing here needs a model): a suite run twice,
the second time with another system prompt, then `evalkit compare` and
`evalkit report --compare` through the CLI's main function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.checks import Score
from evalkit.cli import main
from evalkit.comparison.compare import compare_runs
from evalkit.record.results import CandidateIdentity, CandidateResult, ItemResult, RunResult
from evalkit.testing.tiny_model import CLASSIFIER_ITEMS, write_jsonl

SYSTEM = "Classify the ticket as JSON."
NEW_SYSTEM = "Classify the ticket. Reply with JSON only."


def write_suite(root: Path, bars: list[dict[str, str]] | None = None) -> Path:
    """A two-candidate mock suite (base and lora, both echoing the reference)."""
    write_jsonl(root / "data" / "eval.jsonl", CLASSIFIER_ITEMS)
    suite: dict[str, Any] = {
        "name": "identity",
        "dataset": {"path": "../data/eval.jsonl"},
        "prompt": {"system": SYSTEM, "user": "{{ input }}", "expected": "{{ output }}"},
        "candidates": [{"name": "base", "model": "smollm2-135m-instruct", "backend": "mock"},
                       {"name": "lora", "model": "my-org/lora-merged", "backend": "mock"}],
        "checks": ["exact_match", "json_valid"],
        "output_dir": "../reports",
        **({"bars": bars} if bars else {}),
    }
    path = root / "suites" / "identity.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run_suite(suite: Path, out: Path, *options: str) -> str:
    """Run the suite through the CLI and return the run's id."""
    assert main(["run", str(suite), "--json", str(out), *options]) == 0
    return str(json.loads(out.read_text())["run_id"])


def compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, dict[str, Any]]:
    """Run `evalkit compare` twice (text, then --json) and return the exit code, the text and the JSON."""
    capsys.readouterr()
    code = main(["compare", *args])
    text = capsys.readouterr().out
    assert main(["compare", *args, "--json"]) == code
    return code, text, json.loads(capsys.readouterr().out)


def test_a_system_prompt_change_is_named_for_every_candidate_with_its_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path, bars=[{"lora": "exact_match >= 0.5"}])
    before = run_suite(suite, tmp_path / "a.json")
    after = run_suite(suite, tmp_path / "b.json", "--set", f"prompt.system={NEW_SYSTEM}")
    code, text, data = compare(capsys, before, after)
    assert code == 0  # equal metrics: nothing regressed

    # Text: what changed comes first, for each candidate, with the prompt's diff.
    for name in ("base", "lora"):
        assert f"{name} (run {after}) vs {name} (run {before}): prompt changed" in text
    assert text.count(f"-{SYSTEM}") == 2 and text.count(f"+{NEW_SYSTEM}") == 2
    assert text.index("prompt changed") < text.index("exact_match")
    for other in ("model changed", "adapter changed", "generation settings changed", "data changed",
                  "versions changed", "identity unchanged"):
        assert other not in text
    # The standing: lora's bar passed, so it is deployable; base is run B's baseline.
    assert "lora: deployable: every bar of run" in text and "base: the baseline of run" in text

    # JSON: the same diff, and deployable by the one rule.
    for name in ("base", "lora"):
        identity = data["candidates"][name]["identity"]
        assert identity["summary"] == "prompt changed"
        assert [change["field"] for change in identity["changes"]] == ["prompt_hash"]
        assert f"-{SYSTEM}\n" in identity["prompt_diff"] and f"+{NEW_SYSTEM}\n" in identity["prompt_diff"]
        assert "\n [user]\n {{ input }}\n" in identity["prompt_diff"]  # context: the unchanged user template
        assert identity["notes"] == []
    assert data["candidates"]["lora"]["status"] == "deployable" and data["candidates"]["lora"]["deployable"] is True
    assert data["candidates"]["base"]["status"] == "baseline" and data["candidates"]["base"]["deployable"] is False
    assert data["regressed"] is False and data["deployable"] is False  # not every candidate is deployable

    # The two-run report shows the same diff, before the metrics.
    page_path = tmp_path / "compare.html"
    assert main(["report", "--compare", before, after, "--out", str(page_path)]) == 0
    page = page_path.read_text()
    assert page.count("prompt changed") >= 2 and page.index("prompt changed") < page.index('id="metrics"')
    assert f"-{SYSTEM}" in page and f"+{NEW_SYSTEM}" in page


def test_identical_runs_say_identity_unchanged_and_a_candidate_without_bars_is_not_deployable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path)
    before = run_suite(suite, tmp_path / "a.json")
    after = run_suite(suite, tmp_path / "b.json")
    code, text, data = compare(capsys, before, after)
    assert code == 0  # no regression: a compare without bars still exits 0
    for name in ("base", "lora"):
        assert f"{name} (run {after}) vs {name} (run {before}): identity unchanged" in text
        assert data["candidates"][name]["identity"] == {"summary": "identity unchanged", "changes": [],
                                                        "prompt_diff": "", "notes": []}
    assert not re.search(r"(?<!un)changed", text)  # no false "changed" anywhere
    assert "lora: no bars: run" in text and "not deployable" in text
    lora = data["candidates"]["lora"]
    assert (lora["status"], lora["deployable"]) == ("no_bars", False)
    assert data["deployable"] is False and data["regressed"] is False
    # Within one run too: no bars, not deployable; nothing regressed, exit 0; no identity diff.
    code, text, data = compare(capsys, after)
    assert code == 0 and data["candidates"]["lora"]["deployable"] is False
    assert data["candidates"]["lora"]["identity"] is None and "lora: no bars" in text


def test_generation_settings_and_their_values_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path)
    before = run_suite(suite, tmp_path / "a.json")
    after = run_suite(suite, tmp_path / "b.json", "--set", "generation.max_new_tokens=7")
    code, text, data = compare(capsys, before, after, "--candidate", "lora")
    assert code == 0
    identity = data["candidates"]["lora"]["identity"]
    assert identity["summary"] == "generation settings changed" and identity["prompt_diff"] == ""
    assert identity["changes"] == [{"kind": "generation", "field": "generation.max_new_tokens",
                                    "before": "96", "after": "7"}]
    assert "generation.max_new_tokens: 96 -> 7" in text


def _old_run(run_id: str, prompt_hash: str) -> RunResult:
    """A run as evalkit stored it before runs recorded their resolved suite: identities only."""
    identity = CandidateIdentity(model_source="m", model_fingerprint="f" * 64, adapter=None, adapter_hash=None,
                                 backend="mock", prompt_hash=prompt_hash)
    items = [ItemResult(item_id=str(n), fields={}, prompt="p", expected="e", prediction="e",
                        scores={"exact_match": Score(1.0)}) for n in range(3)]
    return RunResult(run_id=run_id, suite_name="old", suite_path="", baseline="lora",
                     candidates=[CandidateResult(name="lora", items=items, identity=identity)],
                     started_at="2026-01-05T10:00:00+00:00", dataset_hash="d" * 64, evalkit_version="0.9.0")


def test_runs_without_a_resolved_suite_name_the_change_and_what_they_do_not_record() -> None:
    comparison = compare_runs(_old_run("old-1", "1" * 64), _old_run("old-2", "2" * 64))
    identity = comparison.candidates["lora"].identity
    assert identity is not None and identity.summary == "prompt changed" and identity.prompt_diff == ""
    assert [(c.field, c.before, c.after) for c in identity.changes] == [("prompt_hash", "1" * 64, "2" * 64)]
    assert len(identity.notes) == 2 and all("prompt text not recorded" in note for note in identity.notes)
    assert comparison.candidates["lora"].status == "baseline"  # run B's own baseline: not deployable
