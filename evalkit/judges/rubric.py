"""Rubric files: what a judge scores, on which scale, and the prompt it reads.

A rubric is a YAML file people write and review like code::

    name: classifier_quality
    description: Quality of a support-ticket classification.
    criteria:
      - name: format
        description: Follows the required JSON format exactly.
        levels:                     # every score 1..5 says what it means
          1: Not JSON at all.
          ...
          5: Valid JSON with exactly the required fields.
    template: |                     # jinja2, rendered in the sandbox
      Task: {{ item.instruction }}
      Expected output: {{ reference }}
      Actual output: {{ prediction }}
      {{ criteria }}
      {{ output_format }}
    examples: []                    # optional few-shot judgments shown before the item
    labels: labels/x.jsonl          # optional human-labelled calibration set
    sample: {item: {...}, prediction: ..., reference: ...}   # used by `rubric validate`

Template variables: ``item`` (the item's fields), ``prediction``, ``reference``,
``criteria`` (the criteria and their levels as text), ``output_format`` (the JSON the
judge must return). Pairwise templates get ``prediction_a`` and ``prediction_b``
instead of ``prediction``. Each item field, prediction and reference arrives already
enclosed in its tag (``<candidate_output-MARK>...``, see :mod:`evalkit.judges.prompt`),
so a template shows them, it does not compare or slice them. ``include``/``import``/``extends`` are refused: a rubric
must not read files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, PrivateAttr, field_validator, model_validator

from evalkit.files.digest import json_digest
from evalkit.files.yaml_source import StrictModel, load_model_from_yaml

SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FORBIDDEN_NODES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)

DEFAULT_SYSTEM = (
    "You are a careful, strict evaluator. Judge only against the rubric you are given, "
    "and answer with the JSON object asked for, nothing else."
)

DEFAULT_PAIRWISE_TEMPLATE = """\
Compare two responses to the same task.

Task input:
{% for value in item.values() %}{{ value }}
{% endfor %}
Reference answer:
{{ reference }}

Response A:
{{ prediction_a }}

Response B:
{{ prediction_b }}

Judge them on these criteria:
{{ criteria }}

{{ output_format }}"""


def check_template_safe(text: str) -> str:
    """Parse a template in the sandbox and refuse constructs that reach the file system.

    Raises:
        ValueError: a syntax error, or an include/import/extends tag (with its line).
    """
    try:
        tree = SandboxedEnvironment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"jinja2 syntax error on template line {exc.lineno}: {exc.message}") from None
    except RecursionError:  # jinja2's parser recurses once per nested bracket
        raise ValueError("the template nests brackets too deeply to parse; simplify it") from None
    for node in tree.find_all(_FORBIDDEN_NODES):
        raise ValueError(
            f"template line {node.lineno}: '{type(node).__name__.lower()}' reads other files, "
            "which rubric templates may not do; inline the text instead"
        )
    return text


class Criterion(StrictModel):
    """One thing the judge scores on the 1..5 scale."""

    name: str
    """Short identifier; the metric is ``judge.<rubric>.<name>``."""
    description: str
    """What the criterion measures, in one or two sentences."""
    levels: dict[int, str]
    """What each score 1..5 means; every level needs a description."""

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use a letter, then letters, digits or '_' (it becomes a JSON key)")
        return value

    @field_validator("levels")
    @classmethod
    def _every_level_described(cls, value: dict[int, str]) -> dict[int, str]:
        missing = [level for level in SCALE if not str(value.get(level, "")).strip()]
        extra = sorted(set(value) - set(SCALE))
        if extra:
            raise ValueError(f"levels must be 1..5; remove {', '.join(map(str, extra))}")
        if missing:
            raise ValueError(f"describe every score level; missing: {', '.join(map(str, missing))}")
        return dict(sorted(value.items()))


class JudgeExample(StrictModel):
    """A worked judgment shown to the judge before the item (few-shot)."""

    item: dict[str, Any]
    prediction: str
    reference: str = ""
    scores: dict[str, int]
    reasoning: str = ""


class SampleInput(StrictModel):
    """An item, a prediction and a reference used to check that the template renders."""

    item: dict[str, Any]
    prediction: str = ""
    reference: str = ""


class Rubric(StrictModel):
    """A whole rubric file."""

    name: str
    """The rubric's name; metrics are ``judge.<name>.<criterion>``."""
    description: str = ""
    """What the rubric judges."""
    criteria: list[Criterion] = Field(min_length=1)
    system: str = DEFAULT_SYSTEM
    """The judge's system message."""
    template: str
    """The judge prompt, a jinja2 template (see the module docstring for its variables)."""
    pairwise_template: str = DEFAULT_PAIRWISE_TEMPLATE
    """The pairwise prompt; gets ``prediction_a`` and ``prediction_b``."""
    examples: list[JudgeExample] = Field(default_factory=list)
    """Few-shot judgments shown to the judge before each item."""
    labels: str | None = None
    """Human-labelled calibration set (JSONL), relative to the rubric file."""
    sample: SampleInput | None = None
    """An input `evalkit rubric validate` renders the template on."""

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use a letter, then letters, digits or '_'")
        return value

    @field_validator("template", "pairwise_template", "system")
    @classmethod
    def _template_safe(cls, value: str) -> str:
        return check_template_safe(value)

    @model_validator(mode="after")
    def _cross_checks(self) -> Rubric:
        names = [c.name for c in self.criteria]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"criterion names must be unique; repeated: {', '.join(repeated)}")
        for number, example in enumerate(self.examples, start=1):
            if set(example.scores) != set(names):
                raise ValueError(f"examples[{number - 1}] must score exactly: {', '.join(names)}")
            off = {k: v for k, v in example.scores.items() if v not in SCALE}
            if off:
                raise ValueError(f"examples[{number - 1}] scores must be 1..5, got {off}")
        return self

    @property
    def source(self) -> Path:
        """The rubric file (a stand-in in the cwd when built in code)."""
        return self._source if self._source is not None else Path.cwd() / f"{self.name}.yaml"

    @property
    def criterion_names(self) -> list[str]:
        """Criterion names in file order."""
        return [c.name for c in self.criteria]

    def labels_path(self) -> Path | None:
        """The calibration labels file, resolved against the rubric file (None if unset)."""
        if self.labels is None:
            return None
        path = Path(self.labels).expanduser()
        return path if path.is_absolute() else (self.source.parent / path).resolve()

    def content_hash(self) -> str:
        """SHA-256 over everything that changes what the judge is asked (not the labels)."""
        payload = self.model_dump(exclude={"labels", "sample", "description"})
        return json_digest(payload)


def load_rubric(path: str | Path) -> Rubric:
    """Load and validate a rubric file.

    Raises:
        ConfigError: the file is missing, is not YAML or does not validate; the message
            names the file, the line and the field.
    """
    source = Path(path).expanduser().resolve()
    rubric = load_model_from_yaml(source, Rubric)
    rubric._source = source
    return rubric
