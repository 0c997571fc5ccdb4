"""Pydantic models of a suite file, :func:`load_suite`, which validates one, and one run's changes to it.

A suite file says what to evaluate (the dataset and the prompt), on which candidates
(models, adapters, prompt variants), with which checks, judges and benchmarks, and
which bars the candidates must meet. Paths in it are relative to the suite file.
Every validation error names the file, the line and the field.

Also here:

* One run's changes to a suite: ``--set key=value`` overrides and ``--limit N`` (:func:`load_suite_with_overrides`,
  :func:`apply_override`, :func:`apply_limit`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import pydantic
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from evalkit.bars.spec import DEFAULT_INCONCLUSIVE, InconclusivePolicy, SuiteBar
from evalkit.benchmarks.spec import BenchmarkSpec
from evalkit.checks.registry import CHECKS
from evalkit.comparison.result import validate_threshold_text
from evalkit.contamination.ngrams import ContaminationSpec
from evalkit.errors import ConfigError
from evalkit.files.yaml_source import (
    StrictModel,
    load_model_from_yaml,
    load_yaml_with_nodes,
    parse_yaml_text,
    validation_error_message,
)
from evalkit.judges.section import JudgeSpec
from evalkit.models.fleet import fleet_urls
from evalkit.models.options import ENGINE_OPTIONS, validate_engine_options
from evalkit.record.run_facts import RunLimit
from evalkit.registry import BACKENDS, UnknownName
from evalkit.slices.spec import SliceSpec
from evalkit.sweeps.spec import SweepSpec, expand_sweep
from evalkit.usage.spec import PriceSpec

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# How long each list of a suite may be: far above any real suite, far below what would make
# a run compute for hours (every slice is compared for every candidate and metric).
MAX_CANDIDATES = 256
MAX_CHECKS = 64
MAX_JUDGES = 32
MAX_BENCHMARKS = 64
MAX_SLICES = 32
MAX_BARS = 1000
MAX_THRESHOLDS = 1000


def _check_template(text: str) -> str:
    try:
        SandboxedEnvironment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"jinja2 syntax error on template line {exc.lineno}: {exc.message}") from None
    except RecursionError:  # jinja2's parser recurses once per nested bracket
        raise ValueError("the template nests brackets too deeply to parse; simplify it") from None
    return text


class DatasetConfig(StrictModel):
    """Where the evaluation items come from."""

    path: str
    """JSONL or CSV file of items, relative to the suite file."""
    id_field: str | None = None
    """Field holding each item's id; default: the item's line number."""
    train_path: str | None = None
    """The training data, used for few-shot examples and the leakage warning."""
    limit: int | None = Field(default=None, ge=1)
    """Evaluate only the first N items (handy for a quick look)."""


class PromptConfig(StrictModel):
    """How an item becomes a chat prompt, and what the expected answer is."""

    system: str | None = None
    """System message (a jinja2 template over the item's fields)."""
    user: str = "{{ input }}"
    """User message, a jinja2 template over the item's fields."""
    expected: str = "{{ output }}"
    """The reference answer, a jinja2 template over the item's fields."""
    few_shot: int = Field(default=0, ge=0, le=16)
    """Worked examples drawn from ``dataset.train_path`` (never from eval items)."""

    @field_validator("system", "user", "expected")
    @classmethod
    def _templates_parse(cls, value: str | None) -> str | None:
        return value if value is None else _check_template(value)


class PromptOverride(StrictModel):
    """A candidate's changes to the suite prompt (a prompt variant of a model)."""

    system: str | None = None
    """Replaces the suite's system message."""
    user: str | None = None
    """Replaces the suite's user template."""
    few_shot: int | None = Field(default=None, ge=0, le=16)
    """Replaces the suite's number of few-shot examples."""

    @field_validator("system", "user")
    @classmethod
    def _templates_parse(cls, value: str | None) -> str | None:
        return value if value is None else _check_template(value)


class GenerationConfig(StrictModel):
    """Decoding settings shared by every candidate."""

    max_new_tokens: int = Field(default=96, ge=1, le=8192)
    """Upper bound on generated tokens per item."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """0 means greedy decoding (the default, for reproducible results)."""
    batch_size: int = Field(default=16, ge=1, le=1024)
    """Items generated together; items are sorted by length before batching."""
    samples: int = Field(default=1, ge=1, le=64)
    """Outputs per item (needs temperature > 0). Above 1, every check becomes a per-item rate
    (the pass@1 estimate) beside ``<check>.pass@k`` and ``<check>.pass^k`` (see evalkit.checks.sampling)."""
    seed: int = Field(default=0, ge=0)
    """Sampling seed: each (item, sample) draws from its own generator seeded from this, the
    item's id and the sample number, so two runs with one seed give the same outputs."""
    pass_at: list[int] = Field(default_factory=list, max_length=64)
    """The k of pass@k and pass^k (each 2..samples); default: ``[samples]``."""

    @model_validator(mode="after")
    def _sampling_rules(self) -> GenerationConfig:
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("samples > 1 needs temperature > 0 (greedy decoding gives the same output "
                             "every time); set e.g. temperature: 0.7")
        wrong = [k for k in self.pass_at if not 2 <= k <= self.samples]
        if wrong:
            raise ValueError(f"pass_at: {wrong[0]} is outside 2..samples ({self.samples})")
        return self


def _known_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(str(UnknownName("backend", name, BACKENDS.names())))
    return name


def _backend_enum(schema: dict[str, Any]) -> None:
    # The JSON Schema lists the registered names (editors complete them).
    schema["enum"] = BACKENDS.names()


class CandidateConfig(StrictModel):
    """One model variant under evaluation."""

    name: str
    """Short unique name used in tables, bars and reports."""
    model: str
    """Model source: ``smollm2-135m-instruct``, a local HF directory, a GGUF file or a hub id."""
    adapter: str | None = None
    """A peft LoRA adapter directory, relative to the suite file."""
    train: str | None = None
    """A training config that makes ``adapter`` when it is missing or stale."""
    merged_from: str | None = None
    """The adapter whose merge into its base makes ``model`` (a merged-model candidate)."""
    backend: Annotated[str, AfterValidator(_known_backend),
                       Field(json_schema_extra=_backend_enum)] = "hf"
    """Which backend generates for this candidate: a name in the backend registry
    (``hf``, ``mock``, ``openai_server``, ``vllm``, or one a plugin registers)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype; auto is bf16 on a GPU and float32 on a CPU."""
    prompt: PromptOverride | None = None
    """Prompt changes for this candidate only."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Backend-specific options (e.g. ``base_url`` for openai_server)."""
    constrain: Literal["json_schema"] | None = None
    """Constrained decoding as a control: ``json_schema`` forces every output to the schema
    of the suite's ``json_schema`` check (vLLM structured outputs; xgrammar on HF), so a
    constrained base shows how much of a fine-tune's gain is only the format."""
    optional: bool = False
    """May be missing: when its model or adapter does not exist (and nothing in the suite
    makes it) the run goes on without it and reports it as not evaluated. By default a
    candidate that cannot be evaluated stops the run before generation (exit 2)."""

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError("use letters, digits, '_', '-', '.' only")
        return value

    @model_validator(mode="after")
    def _engine_and_fleet_options(self) -> CandidateConfig:
        served = self.backend == "openai_server" and bool(self.options.get("serve"))
        if self.backend == "vllm" or served:
            validate_engine_options(self.options, served=served)
        elif self.backend == "openai_server":
            set_here = sorted(set(self.options) & set(ENGINE_OPTIONS))
            if set_here:
                raise ValueError(f"options.{set_here[0]} is a vLLM engine option: it needs backend vllm, "
                                 "or backend openai_server with serve: true (a remote server sets its own)")
            if "base_url" in self.options:
                fleet_urls(self.options["base_url"])
        return self


class RayExecutorConfig(StrictModel):
    """Evaluate on a Ray cluster: work units (candidate x shard of items) go to Ray actors."""

    address: str = "local"
    """``local`` (a cluster started for this run), ``auto`` (the one ``ray start`` made here) or ``ray://host:port``."""
    num_workers: int = Field(default=2, ge=1, le=4096)
    """Ray actors, each holding its own backend (one model copy each)."""
    cpus_per_worker: float = Field(default=1.0, gt=0)
    """CPUs Ray reserves per actor; also the actor's torch thread count."""
    gpus_per_worker: float = Field(default=0.0, ge=0)
    """GPUs Ray reserves per actor (tensor_parallel_size x pipeline_parallel_size for a vLLM engine)."""
    chunks_per_unit: int = Field(default=1, ge=1, le=1024)
    """Batches (``generation.batch_size`` items each) in one work unit."""
    max_unit_retries: int = Field(default=3, ge=0, le=100)
    """How often a unit whose actor died is retried on another actor before the run fails."""

    @field_validator("address")
    @classmethod
    def _address_form(cls, value: str) -> str:
        if value in ("local", "auto") or value.startswith("ray://") or re.match(r"^[\w.-]+:\d+$", value):
            return value
        raise ValueError(f"address {value!r}: use local, auto, ray://HOST:PORT or HOST:PORT")


class ExecutorConfig(StrictModel):
    """Where generation runs: here (the default, no section) or on a Ray cluster."""

    ray: RayExecutorConfig | None = None
    """Run the work units on Ray actors (needs ``pip install 'evalkit[ray]'``)."""


class CheckSpec(StrictModel):
    """A check referenced from the suite: a registered name and its options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


def _parse_check(entry: Any) -> dict[str, Any]:
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, dict) and len(entry) == 1:
        ((name, raw),) = entry.items()
        if isinstance(raw, dict):
            options = dict(raw)
        elif raw is None:
            options = {}
        else:
            options = {"value": raw}
    else:
        raise ValueError("write a check as a name or as {name: options}")
    if name not in CHECKS:
        raise ValueError(str(UnknownName("check", name, CHECKS.names())))
    return {"name": name, "options": options}


def _valid_threshold(value: Any) -> str:
    # Before type checking, so that a bare number (`2`) gets the message showing both forms.
    return validate_threshold_text(str(value))


ThresholdText = Annotated[str, BeforeValidator(_valid_threshold)]
"""A regression threshold: ``3%`` (relative to the baseline) or ``2pt`` (absolute points)."""


class SuiteConfig(StrictModel):
    """A whole suite file."""

    name: str
    """The suite's name; runs are stored under it."""
    description: str = ""
    """One line saying what the suite evaluates."""
    dataset: DatasetConfig
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    candidates: list[CandidateConfig] = Field(min_length=1, max_length=MAX_CANDIDATES)
    baseline: str | None = None
    """Candidate the others are compared with; default: the first one."""
    checks: list[CheckSpec] = Field(default_factory=list, max_length=MAX_CHECKS)
    judges: list[JudgeSpec] = Field(default_factory=list, max_length=MAX_JUDGES)
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, max_length=MAX_BENCHMARKS)
    slices: list[SliceSpec] = Field(default_factory=list, max_length=MAX_SLICES)
    """Item fields to compare every metric on, slice by slice (see :mod:`evalkit.slices.compare`)."""
    sweep: SweepSpec | None = None
    """A training run's checkpoints as candidates, and the rule that picks one (see :mod:`evalkit.sweeps.stage`)."""
    contamination: ContaminationSpec = Field(default_factory=ContaminationSpec)
    """N-gram overlap of each candidate's training data with every benchmark and the eval set
    (see :mod:`evalkit.contamination.stage`)."""
    prices: dict[str, PriceSpec] = Field(default_factory=dict, max_length=MAX_THRESHOLDS)
    """Prices by candidate name or model glob, over evalkit's own table (see :mod:`evalkit.usage.stage`)."""
    bars: list[SuiteBar] = Field(default_factory=list, max_length=MAX_BARS)
    parity: bool = False
    """Also run the HF-vs-vLLM, merged and no-op adapter parity checks (see ``evalkit parity``)."""
    max_drop: ThresholdText = "3%"
    """Default regression threshold: ``3%`` relative or ``2pt`` absolute."""
    thresholds: dict[str, ThresholdText] = Field(default_factory=dict, max_length=MAX_THRESHOLDS)
    """Per-metric thresholds: metric name or glob (``field_accuracy.*``) -> ``3%`` or ``2pt``."""
    inconclusive: InconclusivePolicy = DEFAULT_INCONCLUSIVE
    """What a drop bar the data cannot decide does: ``fail`` (the default: exit 1, a failed
    test; an undecided gate never reads as a pass) or ``warn`` (shown, not gating)."""
    output_dir: str = "../reports"
    """Where run directories are written, relative to the suite file."""
    store: str | None = None
    """SQLite run store, relative to the suite file; default ``$EVALKIT_STORE``, else ``evalkit.db`` in
    evalkit's data directory (``$EVALKIT_HOME``, else ``$XDG_DATA_HOME/evalkit``, else ``~/.local/share/evalkit``)."""
    executor: ExecutorConfig | None = None
    """Where generation runs (``executor: {ray: {...}}``); default: in this process."""

    _source: Path | None = PrivateAttr(default=None)
    _overrides: tuple[str, ...] = PrivateAttr(default=())  # the --set options applied, recorded in the run

    @field_validator("name")
    @classmethod
    def _suite_name_is_simple(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError("use letters, digits, '_', '-', '.' only")
        return value

    @field_validator("checks", mode="before")
    @classmethod
    def _normalise_checks(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_parse_check(entry) for entry in value]

    @model_validator(mode="after")
    def _cross_field_rules(self) -> SuiteConfig:
        names = [c.name for c in self.candidates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(duplicates)}")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(
                f"baseline '{self.baseline}' is not a candidate; choose one of {', '.join(names)}"
            )
        allowed = names + ([self.sweep.name] if self.sweep is not None else [])
        for index, spec in enumerate(self.benchmarks):
            unknown = [n for n in spec.candidates or [] if n not in allowed]
            if unknown:
                raise ValueError(f"benchmarks.{index}.candidates: no candidate named '{unknown[0]}'; "
                                 f"choose from {', '.join(allowed)}")
        needs_train = self.prompt.few_shot > 0 or any(
            c.prompt is not None and (c.prompt.few_shot or 0) > 0 for c in self.candidates
        )
        if needs_train and self.dataset.train_path is None:
            raise ValueError("few_shot needs dataset.train_path to draw examples from")
        constrained = [c.name for c in self.candidates if c.constrain == "json_schema"]
        if constrained and not any(check.name == "json_schema" for check in self.checks):
            raise ValueError(f"candidate '{constrained[0]}' has constrain: json_schema, but the suite has no "
                             "json_schema check to take the schema from; add `- json_schema: schemas/x.json`")
        return self

    @property
    def source(self) -> Path:
        """The suite file this config was loaded from (the cwd's stand-in if built in code)."""
        return self._source if self._source is not None else Path.cwd() / "suite.yaml"

    @property
    def base_dir(self) -> Path:
        """Directory relative paths in the suite are resolved against."""
        return self.source.parent

    def resolve(self, relative: str) -> Path:
        """Resolve a path written in the suite file against the suite's directory."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def baseline_name(self) -> str:
        """The baseline candidate's name (the first candidate unless set)."""
        return self.baseline or self.candidates[0].name

    def candidate(self, name: str) -> CandidateConfig:
        """Return the candidate called ``name``.

        Raises:
            ConfigError: no candidate has that name.
        """
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"{self.source}: no candidate named '{name}'")

    def add_candidate(self, entry: dict[str, Any]) -> CandidateConfig:
        """Validate one candidate entry (as written under ``candidates:``) and add it to the suite."""
        candidate = CandidateConfig.model_validate(entry)
        self.candidates.append(candidate)
        return candidate


def load_suite(path: str | Path) -> SuiteConfig:
    """Load and validate a suite file.

    Args:
        path: the suite YAML file.

    Returns:
        The validated suite, remembering its source path for relative paths.

    Raises:
        ConfigError: the file is missing, is not YAML or does not validate; the message
            names the file, the line and the field.
    """
    source = Path(path).expanduser().resolve()
    suite = load_model_from_yaml(source, SuiteConfig)
    suite._source = source
    expand_sweep(suite)
    return suite


# One run's changes to a suite: ``--set key=value`` overrides and ``--limit N``.
#
# ``--set`` takes a dotted path into the suite file (``generation.max_new_tokens=64``,
# ``candidates.1.adapter=adapters/v2``: numbers index lists) and a YAML value (``64``,
# ``true``, ``[a, b]``, ``null``). Overrides are applied to the file's mapping before
# validation, so they are checked exactly like the YAML; an error names the ``--set``.
#
# ``--limit N`` evaluates the first N items per candidate and a smaller benchmark
# sample (MMLU: ``ceil(N / subjects)`` questions per subject; other lm-eval tasks: the
# first N documents). A limited run says so in its warnings and its ``limit`` section.

@dataclass(frozen=True)
class Override:
    """One ``--set``: the path into the suite mapping and the parsed value.

    Attributes:
        text: the option as written (for messages).
        path: keys (and list indices) from the top of the suite file.
        value: the YAML-parsed value.
    """

    text: str
    path: tuple[str | int, ...]
    value: Any


def parse_override(text: str) -> Override:
    """Parse ``key.sub=value``.

    Raises:
        ConfigError: no ``=``, an empty key part, or a value that is not YAML.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(part.strip() for part in parts):
        raise ConfigError(f"--set {text}: write --set KEY=VALUE with a dotted key, e.g. generation.max_new_tokens=64")
    value = parse_yaml_text(raw, f"--set {text}")[0] if raw.strip() else ""
    path = tuple(int(part) if part.strip().isdigit() else part.strip() for part in parts)
    return Override(text=text, path=path, value=value)


def apply_override(data: dict[str, Any], override: Override) -> None:
    """Set ``override``'s value in the suite mapping, creating missing mappings on the way.

    Raises:
        ConfigError: the path goes through a value that is not a mapping or list, or past
            the end of a list.
    """
    node: Any = data
    for depth, part in enumerate(override.path):
        last = depth == len(override.path) - 1
        where = ".".join(str(p) for p in override.path[: depth + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise ConfigError(f"--set {override.text}: {where}: the list has {len(node)} entries "
                                  f"(indices 0-{len(node) - 1})")
            if last:
                node[part] = override.value
            else:
                node = node[part]
        elif isinstance(node, dict):
            key = str(part)
            if last:
                node[key] = override.value
            else:
                node = node.setdefault(key, {})
        else:
            parent = ".".join(str(p) for p in override.path[:depth]) or "(top level)"
            raise ConfigError(f"--set {override.text}: {parent} is a value, not a mapping or list")


def load_suite_with_overrides(path: str | Path, sets: Sequence[str] = ()) -> SuiteConfig:
    """Load a suite file with ``--set`` overrides applied before validation.

    Raises:
        ConfigError: a bad override, or a suite that does not validate with it (the
            message names the ``--set`` when the error is in an overridden value).
    """
    if not sets:
        return load_suite(path)
    overrides = [parse_override(text) for text in sets]
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        return load_suite(source)  # its own message for a missing file
    data, node = load_yaml_with_nodes(source)
    if not isinstance(data, dict):
        return load_suite(source)
    for override in overrides:
        apply_override(data, override)
    try:
        suite = SuiteConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        location = tuple(p for p in exc.errors()[0]["loc"] if isinstance(p, str | int))
        for override in reversed(overrides):
            if location[: len(override.path)] == override.path or override.path[: len(location)] == location:
                message = validation_error_message(source, None, exc).split(": ", 1)[1]
                raise ConfigError(f"--set {override.text}: {message}") from None
        raise ConfigError(validation_error_message(source, node, exc)) from None
    suite._source = source
    suite._overrides = tuple(sets)
    from evalkit.sweeps.spec import expand_sweep

    expand_sweep(suite)
    return suite


def apply_limit(suite: SuiteConfig, limit: int) -> RunLimit:
    """Cut the suite down for a quick run: ``limit`` items, a smaller benchmark sample.

    Returns:
        What was cut: the run's warning (:meth:`RunLimit.describe`) and its ``limit`` section.

    Raises:
        ConfigError: ``limit`` is below 1.
    """
    if limit < 1:
        raise ConfigError(f"--limit {limit}: give a positive number of items")
    suite.dataset.limit = min(suite.dataset.limit or limit, limit)
    per_subject: int | None = None
    documents: int | None = None
    from evalkit.benchmarks.mmlu_data import MMLU_SUBJECTS

    for spec in suite.benchmarks:
        if spec.is_mmlu:
            subjects = len(spec.subjects or MMLU_SUBJECTS)
            wanted = max(1, math.ceil(limit / subjects))
            current = spec.per_subject_limit
            spec.limit_per_subject = min(current, wanted) if current is not None else wanted
            per_subject = max(per_subject or 0, spec.limit_per_subject)
        else:
            spec.limit = min(spec.limit or limit, limit)
            documents = max(documents or 0, spec.limit)
    return RunLimit(items=limit, mmlu_per_subject=per_subject, lm_eval_documents=documents)
