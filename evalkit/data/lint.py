"""Data lint, run before any training: the examples of one file, checked for quality.

Lint (``evalkit data lint FILE``, and before every ``evalkit train``) follows the
"quality before quantity" practice. It refuses (an *error*) when:

* the file has fewer than :data:`MIN_EXAMPLES` examples (warns under
  :data:`RECOMMENDED_EXAMPLES`);
* the outputs come in mixed formats: JSON objects with different key orders, key
  sets or spacing, single-quoted (Python-style) dicts, leading/trailing whitespace,
  some JSON and some not. The majority format is taken as intended and every other
  line is listed with what differs;
* an example repeats another exactly;
* a field is empty, or a field the prompt uses is missing;
* prompt plus answer is longer than the max sequence length (the trainer would cut the
  answer off).

``--force`` trains anyway; the findings are still printed. Leakage between the
training and the eval file is checked by :mod:`evalkit.data.items`.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from evalkit.data.items import Item, load_items
from evalkit.errors import DataError
from evalkit.prompting import PromptTemplate

MIN_EXAMPLES = 100
RECOMMENDED_EXAMPLES = 200
# Messages list at most this many lines inline; the full list is on the finding.
_SHOWN = 8
_SINGLE_FIELD = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class LintFinding:
    """One problem lint found.

    Attributes:
        rule: ``too_few``, ``few``, ``mixed_format``, ``duplicate``, ``empty_field``,
            ``missing_field`` or ``too_long``.
        severity: ``error`` refuses training (unless forced); ``warning`` does not.
        message: what is wrong and what to do, naming the lines.
        lines: every offending line of the file.
    """

    rule: str
    severity: Severity
    message: str
    lines: tuple[int, ...] = ()


@dataclass
class LintReport:
    """The findings of lint on one file.

    Attributes:
        path: the linted file.
        examples: how many examples it holds.
        findings: every problem found, errors first.
    """

    path: Path
    examples: int
    findings: list[LintFinding] = field(default_factory=list)

    @property
    def errors(self) -> list[LintFinding]:
        """The findings that refuse training."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[LintFinding]:
        """The findings that only warn."""
        return [f for f in self.findings if f.severity == "warning"]

    def raise_if_refused(self, force: bool = False) -> None:
        """Raise a DataError summarising the errors, unless there are none or ``force``.

        Raises:
            DataError: lint found errors and ``force`` is False.
        """
        if self.errors and not force:
            rules = "; ".join(f.message for f in self.errors)
            raise DataError(f"{self.path}: data lint refused the file: {rules}. Fix the data or pass --force")


def _line_list(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:_SHOWN])
    return shown + (f" and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else "")


def template_fields(template: PromptTemplate) -> list[str]:
    """Return the item fields a prompt template reads, in a stable order."""
    env = SandboxedEnvironment()
    names: set[str] = set()
    for text in (template.system, template.user, template.expected):
        if text:
            names |= jinja2.meta.find_undeclared_variables(env.parse(text))
    return sorted(names)


def output_format(text: str) -> tuple[str, ...]:
    """Describe the format of one output as a tuple of traits (equal tuples, equal formats).

    The first trait is the kind (``json``, ``single-quoted``, ``text``); JSON objects add
    their key order and their spacing; surrounding whitespace adds a trait of its own.
    """
    traits: list[str] = []
    stripped = text.strip()
    kind = "text"
    value: Any = None
    if stripped.startswith(("{", "[")):
        try:
            value = json.loads(stripped)
            kind = "json"
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(stripped)
                kind = "single-quoted"
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                kind = "text"
    traits.append(kind)
    if kind == "json":
        if isinstance(value, dict):
            traits.append("keys:" + ",".join(value))
        traits.append(_json_spacing(value, stripped))
    if text != text.rstrip():
        traits.append("trailing whitespace")
    if text != text.lstrip():
        traits.append("leading whitespace")
    return tuple(traits)


def _json_spacing(value: Any, text: str) -> str:
    renderings = {
        "spacing:', ' ': '": lambda ascii_only: json.dumps(value, ensure_ascii=ascii_only),
        "spacing:compact": lambda ascii_only: json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")),
        "spacing:indented": lambda ascii_only: json.dumps(value, ensure_ascii=ascii_only, indent=2),
    }
    for name, render in renderings.items():
        if text in (render(True), render(False)):
            return name
    return "spacing:irregular"


def _difference(trait: tuple[str, ...], majority: tuple[str, ...]) -> str:
    if trait[0] != majority[0]:
        names = {"json": "JSON", "single-quoted": "single-quoted (not JSON)", "text": "not JSON"}
        return f"{names[trait[0]]} where most are {names[majority[0]]}"
    differences: list[str] = []
    own, usual = dict.fromkeys(trait), dict.fromkeys(majority)
    for extra in own:
        if extra in usual:
            continue
        if extra.startswith("keys:"):
            usual_keys = next((t for t in majority if t.startswith("keys:")), "keys:")
            same_set = sorted(extra[5:].split(",")) == sorted(usual_keys[5:].split(","))
            differences.append("keys in a different order" if same_set else f"different keys ({extra[5:]})")
        elif extra.startswith("spacing:"):
            differences.append(f"{extra[8:]} spacing")
        else:
            differences.append(extra)
    for missing in usual:
        if missing not in own and missing.endswith("whitespace"):
            differences.append(f"no {missing}")
    return ", ".join(differences) or "a different format"


def _output_text(item: Item, template: PromptTemplate | None) -> str | None:
    if template is None:
        value = item.fields.get("output")
        return value if isinstance(value, str) else None
    match = _SINGLE_FIELD.match(template.expected.strip())
    if match:
        # The raw field, not the rendered one: rendering strips the whitespace lint looks for.
        value = item.fields.get(match.group(1))
        return value if isinstance(value, str) else None
    try:
        return template.expected_output(item.fields)
    except DataError:
        return None


def _mixed_formats(items: Sequence[Item], template: PromptTemplate | None) -> LintFinding | None:
    formats: dict[int, tuple[str, ...]] = {}
    for item in items:
        text = _output_text(item, template)
        if text is not None and text.strip():
            formats[item.line] = output_format(text)
    if len(set(formats.values())) <= 1:
        return None
    majority, count = Counter(formats.values()).most_common(1)[0]
    offending = sorted(line for line, trait in formats.items() if trait != majority)
    reasons = [f"line {line}: {_difference(formats[line], majority)}" for line in offending[:_SHOWN]]
    more = f" and {len(offending) - _SHOWN} more" if len(offending) > _SHOWN else ""
    message = (
        f"outputs in mixed formats: {len(offending)} of {len(formats)} differ from the majority "
        f"({count} lines): {'; '.join(reasons)}{more}; write every output in one format"
    )
    return LintFinding("mixed_format", "error", message, tuple(offending))


def _duplicates(items: Sequence[Item]) -> LintFinding | None:
    first_seen: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for item in items:
        key = json.dumps(item.fields, sort_keys=True)
        if key in first_seen:
            repeats.append((item.line, first_seen[key]))
        else:
            first_seen[key] = item.line
    if not repeats:
        return None
    pairs = ", ".join(f"line {line} repeats line {first}" for line, first in repeats[:_SHOWN])
    more = f" and {len(repeats) - _SHOWN} more" if len(repeats) > _SHOWN else ""
    message = f"{len(repeats)} exact duplicates ({pairs}{more}); remove the repeats"
    return LintFinding("duplicate", "error", message, tuple(line for line, _ in repeats))


def _field_problems(items: Sequence[Item], template: PromptTemplate | None) -> list[LintFinding]:
    required = template_fields(template) if template is not None else sorted({k for i in items for k in i.fields})
    empty: dict[str, list[int]] = defaultdict(list)
    missing: dict[str, list[int]] = defaultdict(list)
    for item in items:
        for name in required:
            if name not in item.fields:
                missing[name].append(item.line)
        for name, value in item.fields.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                empty[name].append(item.line)
    findings = [
        LintFinding("missing_field", "error",
                    f"field '{name}' missing on lines {_line_list(lines)}; the prompt needs it", tuple(lines))
        for name, lines in sorted(missing.items())
    ]
    findings += [
        LintFinding("empty_field", "error",
                    f"field '{name}' empty on lines {_line_list(lines)}; fill it or drop those examples",
                    tuple(lines))
        for name, lines in sorted(empty.items())
    ]
    return findings


def example_token_count(tokenizer: Any, template: PromptTemplate, fields: dict[str, Any]) -> int:
    """Return the tokens of one example as trained: the chat-templated prompt plus its answer."""
    conversation = [*template.messages(fields), {"role": "assistant", "content": template.expected_output(fields)}]
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=False)
        return len(ids)
    text = "\n\n".join(m["content"] for m in conversation)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1


def _too_long(
    items: Sequence[Item], template: PromptTemplate, tokenizer: Any, max_seq_length: int
) -> LintFinding | None:
    long: list[tuple[int, int]] = []
    for item in items:
        try:
            count = example_token_count(tokenizer, template, item.fields)
        except DataError:
            continue  # the missing-field rule reports it
        if count > max_seq_length:
            long.append((item.line, count))
    if not long:
        return None
    shown = ", ".join(f"line {line} ({count} tokens)" for line, count in long[:_SHOWN])
    more = f" and {len(long) - _SHOWN} more" if len(long) > _SHOWN else ""
    message = (
        f"{len(long)} examples longer than the max sequence length {max_seq_length}: {shown}{more}; "
        "shorten them or raise training.max_seq_length"
    )
    return LintFinding("too_long", "error", message, tuple(line for line, _ in long))


def lint_items(
    path: Path,
    items: Sequence[Item],
    template: PromptTemplate | None = None,
    tokenizer: Any = None,
    max_seq_length: int | None = None,
) -> LintReport:
    """Lint training examples already loaded.

    Args:
        path: the file they came from (named in messages).
        items: the examples.
        template: the prompt template training renders; it says which fields are needed
            and which one is the output. Without it every field is checked and ``output``
            is taken as the output.
        tokenizer: the base model's tokenizer, for the length rule (skipped without it).
        max_seq_length: the longest allowed example in tokens (skipped when None).

    Returns:
        The report; call :meth:`LintReport.raise_if_refused` to enforce it.
    """
    report = LintReport(path=path, examples=len(items))
    if len(items) < MIN_EXAMPLES:
        report.findings.append(LintFinding(
            "too_few", "error",
            f"only {len(items)} examples; at least {MIN_EXAMPLES} are needed ({RECOMMENDED_EXAMPLES}+ advised)",
        ))
    elif len(items) < RECOMMENDED_EXAMPLES:
        report.findings.append(LintFinding(
            "few", "warning",
            f"{len(items)} examples; {RECOMMENDED_EXAMPLES} or more are advised for a reliable fine-tune",
        ))
    for finding in (_mixed_formats(items, template), _duplicates(items)):
        if finding is not None:
            report.findings.append(finding)
    report.findings.extend(_field_problems(items, template))
    if tokenizer is not None and template is not None and max_seq_length is not None:
        finding = _too_long(items, template, tokenizer, max_seq_length)
        if finding is not None:
            report.findings.append(finding)
    report.findings.sort(key=lambda f: f.severity != "error")
    return report


def lint_file(
    path: Path,
    template: PromptTemplate | None = None,
    tokenizer: Any = None,
    max_seq_length: int | None = None,
) -> LintReport:
    """Load a JSONL/CSV file of training examples and lint it (see :func:`lint_items`).

    Raises:
        DataError: the file is missing or a line is not a JSON object.
    """
    return lint_items(path, load_items(path), template, tokenizer, max_seq_length)
