"""`evalkit rubric validate|preview|new|calibrate`: author a rubric, see its prompt, check its judge."""

from __future__ import annotations

import argparse
from pathlib import Path

from evalkit.commands.console import add_json_option, console, emit_json, progress_reporter
from evalkit.errors import ConfigError, DataError, RegressionFound

SKELETON = '''\
# A rubric for an LLM judge. Check it with `evalkit rubric validate {path}`,
# see the exact prompt with `evalkit rubric preview {path} --suite SUITE --item 1`.
name: {name}
description: What this rubric judges, in one sentence.

# Each criterion is scored 1..5; describe every level so that two readers would give
# the same score. Precise beats general: not "is it good?" but "does it ...?".
criteria:
  - name: helpfulness
    description: Does the response answer what was asked, with a next step the reader can take?
    levels:
      1: Ignores the question or answers a different one.
      2: Touches the question but leaves the reader without an answer.
      3: Answers partly; the reader must still work out the next step.
      4: Answers fully; the next step is there but could be clearer.
      5: Answers fully and says plainly what happens next.

# The judge's prompt, a jinja2 template (rendered in a sandbox: no file access).
# Variables: item (the item's fields), prediction, reference, criteria, output_format.
template: |
  Request: {{{{ item.input }}}}
  Reference answer: {{{{ reference }}}}
  Response to judge: {{{{ prediction }}}}

  Rate the response on these criteria:
  {{{{ criteria }}}}

  {{{{ output_format }}}}

# Optional: worked judgments shown to the judge before each item.
# examples:
#   - item: {{input: "Where is my parcel?"}}
#     prediction: "It ships tomorrow; here is the tracking link."
#     scores: {{helpfulness: 5}}
#     reasoning: Answers and gives the next step.

# Optional: human-labelled judgments (JSONL) for `evalkit rubric calibrate`.
# labels: labels/{name}.jsonl

# An input `evalkit rubric validate` renders the template on.
sample:
  item: {{input: "Where is my parcel?"}}
  reference: "It left our warehouse yesterday; tracking: ..."
  prediction: "Your parcel ships tomorrow."
'''


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``rubric`` command and its subcommands."""
    parser = subparsers.add_parser("rubric", help="author, preview and calibrate judge rubrics")
    commands = parser.add_subparsers(dest="rubric_command", metavar="SUBCOMMAND")
    commands.required = True

    validate = commands.add_parser("validate", help="check a rubric file and render its template on a sample")
    validate.add_argument("file", help="the rubric YAML file")
    validate.set_defaults(handler=handle_validate)

    preview = commands.add_parser("preview", help="print the exact prompt the judge would receive")
    preview.add_argument("file", help="the rubric YAML file")
    preview.add_argument("--suite", required=True, help="the suite whose items to use")
    preview.add_argument("--item", required=True, help="item id (default ids are 1-based line numbers)")
    preview.add_argument("--prediction", help="the prediction to judge (default: the item's reference answer)")
    preview.add_argument("--judge", help="provider[:model]; with local, print the chat-templated text it reads")
    preview.add_argument("--pairwise", action="store_true",
                         help="print the pairwise prompt in both orders (candidate as A, then baseline as A)")
    preview.add_argument("--other", help="with --pairwise: the baseline's response (default: a placeholder)")
    preview.add_argument("--repeat", type=int, default=0,
                         help="pointwise: the prompt of this repeat (criteria rotated, as `repeats:` asks; default 0)")
    preview.set_defaults(handler=handle_preview)

    new = commands.add_parser("new", help="write a commented rubric skeleton to start from")
    new.add_argument("name", help="the rubric's name (letters, digits, '_')")
    new.add_argument("--out", help="where to write it (default rubrics/NAME.yaml)")
    new.set_defaults(handler=handle_new)

    calibrate = commands.add_parser("calibrate", help="measure a judge's agreement with human labels")
    calibrate.add_argument("file", help="the rubric YAML file")
    calibrate.add_argument("--labels", help="human-labelled JSONL (default: the rubric's labels)")
    calibrate.add_argument("--judge", default="local", help="provider[:model], e.g. local, openai:gpt-4o, "
                           "anthropic:claude-opus-4-6 (default: local, the embedded SmolLM2)")
    calibrate.add_argument("--base-url", help="API endpoint for openai/anthropic (e.g. a local vLLM server)")
    calibrate.add_argument("--repeats", type=int, default=2,
                           help="judge each example this many times to measure self-consistency (default: 2)")
    calibrate.add_argument("--min-kappa", type=float, help="exit 1 when any criterion's kappa is below this")
    add_json_option(calibrate, "the statistics")
    calibrate.set_defaults(handler=handle_calibrate)


def handle_validate(args: argparse.Namespace) -> int:
    """Validate the schema, the level descriptions and the template's rendering."""
    from evalkit.judges.rubric import load_rubric, pairwise_messages, pointwise_messages

    rubric = load_rubric(args.file)
    sample = rubric.sample
    if sample is None:
        raise ConfigError(f"{rubric.source}: sample: add a sample input (item, prediction, reference) so "
                          "that validate can render the template on it")
    pointwise_messages(rubric, sample.item, sample.prediction, sample.reference, "sample")
    pairwise_messages(rubric, sample.item, sample.prediction, sample.reference, sample.reference, "sample")
    labels = rubric.labels_path()
    if labels is not None:
        # numpy (via calibration): loaded only when labels are read
        from evalkit.judges.calibration import load_labels

        count = len(load_labels(labels, rubric))
        console.print(f"labels: {count} human-labelled examples in {labels}")
    console.print(f"{rubric.source}: ok ({len(rubric.criteria)} criteria: {', '.join(rubric.criterion_names)})")
    return 0


def _judge_spec(text: str, base_url: str | None = None) -> object:
    from pydantic import ValidationError

    from evalkit.judges.section import JudgeClientSpec

    provider, _, model = text.partition(":")
    try:
        return JudgeClientSpec(provider=provider, model=model, base_url=base_url)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"--judge {text}: {exc.errors()[0]['msg']}; write provider[:model], e.g. "
                          "local or openai:gpt-4o") from None


def handle_preview(args: argparse.Namespace) -> int:
    """Print the judge's prompt for one item of a suite."""
    from evalkit.judges.rubric import load_rubric, pointwise_messages
    from evalkit.prompting import prompt_for_candidate
    from evalkit.stages import load_inputs
    from evalkit.suite.config import load_suite

    rubric = load_rubric(args.file)
    suite = load_suite(args.suite)
    inputs = load_inputs(suite)
    matches = [item for item in inputs.items if item.id == str(args.item)]
    if not matches:
        raise DataError(f"{suite.resolve(suite.dataset.path)}: no item with id '{args.item}'; "
                        f"ids run {inputs.items[0].id}..{inputs.items[-1].id}" if inputs.items else "no items")
    item = matches[0]
    template = prompt_for_candidate(suite, suite.candidates[0])
    reference = template.expected_output(item.fields, f"item {item.id}")
    prediction = args.prediction if args.prediction is not None else reference
    if args.repeat < 0:
        raise ConfigError("--repeat must be 0 or more")
    if args.pairwise:
        from evalkit.judges.rubric import pairwise_messages

        other = args.other if args.other is not None else "(the baseline's response goes here)"
        orders = [("order 1 of 2: candidate shown as A, baseline as B", prediction, other),
                  ("order 2 of 2: baseline shown as A, candidate as B", other, prediction)]
        for title, first, second in orders:
            print(f"=== {title} ===")
            shown = pairwise_messages(rubric, item.fields, first, second, reference, f"item {item.id}")
            _print_prompt(args.judge, shown, '{"winner": "')
        return 0
    from evalkit.judges.calibration import rotated_rubric

    asked = rotated_rubric(rubric, args.repeat)
    messages = pointwise_messages(asked, item.fields, prediction, reference, f"item {item.id}")
    _print_prompt(args.judge, messages, '{"' + rubric.criterion_names[0] + '": ')
    return 0


def _print_prompt(judge: str | None, messages: list[dict[str, str]], local_prefix: str) -> None:
    """Print messages; for a local judge, the chat-templated text it reads, then its reply's start."""
    if judge and judge.split(":")[0] == "local":
        from evalkit.judges.section import JudgeClientSpec
        from evalkit.models.hf import load_tokenizer, render_chat  # torch and transformers: only here
        from evalkit.models.sources import resolve_model

        spec = _judge_spec(judge)
        assert isinstance(spec, JudgeClientSpec)
        tokenizer = load_tokenizer(resolve_model(spec.model).path)
        print(render_chat(tokenizer, messages) + local_prefix)
        return
    for message in messages:
        print(f"--- {message['role']} ---")
        print(message["content"])


def handle_new(args: argparse.Namespace) -> int:
    """Write a rubric skeleton; refuse to overwrite an existing file."""
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", args.name):
        raise ConfigError(f"rubric name '{args.name}': use a letter, then letters, digits or '_'")
    path = Path(args.out) if args.out else Path("rubrics") / f"{args.name}.yaml"
    if path.exists():
        raise ConfigError(f"{path} already exists; choose another name or --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SKELETON.format(name=args.name, path=path), encoding="utf-8")
    console.print(f"wrote {path}; edit it, then `evalkit rubric validate {path}`")
    return 0


def handle_calibrate(args: argparse.Namespace) -> int:
    """Judge the labelled examples and print agreement per criterion."""
    from rich.table import Table

    from evalkit.judges.calibration import (  # numpy: only when calibrating
        JudgeRunner,
        calibrate,
        is_calibrated,
        judgment_cache,
        load_labels,
    )
    from evalkit.judges.providers import create_client
    from evalkit.judges.rubric import load_rubric
    from evalkit.judges.section import JudgeClientSpec

    rubric = load_rubric(args.file)
    labels = Path(args.labels) if args.labels else rubric.labels_path()
    if labels is None:
        raise ConfigError(f"{rubric.source}: no labels; pass --labels FILE or add `labels:` to the rubric")
    if args.repeats < 1:
        raise ConfigError("--repeats must be at least 1")
    examples = load_labels(labels, rubric)
    spec = _judge_spec(args.judge, args.base_url)
    assert isinstance(spec, JudgeClientSpec)
    client = create_client(spec)
    progress = progress_reporter()
    try:
        with judgment_cache() as cache:
            runner = JudgeRunner(client, spec, rubric, cache)
            progress.start(f"calibrating {rubric.name} with {spec.label()}", len(examples) * args.repeats)
            result = calibrate(examples, runner, repeats=args.repeats, on_done=progress.advance)
            progress.finish()
    finally:
        progress.close()
        client.close()

    def shown(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    table = Table(title=f"{rubric.name}: {spec.label()} vs {len(examples)} human labels ({labels.name})")
    for column in ("criterion", "n", "kappa (quadratic)", "spearman", "exact", "within one", "self-consistency sd"):
        table.add_column(column, justify="left" if column == "criterion" else "right")
    for name, stats in result.criteria.items():
        table.add_row(name, str(stats.n), shown(stats.kappa), shown(stats.spearman), shown(stats.exact),
                      shown(stats.within_one), shown(stats.self_consistency))
    console.print(table)
    if result.errors:
        console.print(f"[yellow]{result.errors} examples had no judgment (judge errors), e.g.: "
                      f"{result.error_examples[0] if result.error_examples else ''}[/yellow]")
    if args.json_out:
        payload = {"rubric": rubric.name, "judge": {"provider": spec.provider, "model": spec.model},
                   "labels": str(labels), "n": result.n, "errors": result.errors,
                   "criteria": {c: a.model_dump(mode="json") for c, a in result.criteria.items()}}
        emit_json(args.json_out, payload)
    if args.min_kappa is not None and not is_calibrated(result.kappas(), rubric.criterion_names, args.min_kappa):
        raise RegressionFound(f"judge {spec.label()} is below min kappa {args.min_kappa} on {rubric.name}; "
                              "improve the rubric's level descriptions or use a stronger judge")
    return 0
