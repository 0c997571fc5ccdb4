"""Check everything a suite names before anything runs: seconds, no model loaded.

:func:`load_suite <evalkit.suite.config.load_suite>` validates the suite file itself (keys,
types, bar grammar, candidate and metric names). :func:`check_suite_references` then
opens what the file points at, so that a broken rubric or an unknown benchmark task
fails the run at once, not after every candidate has generated:

* each judge's rubric file exists and validates, and its human-labels file (the
  entry's ``labels:`` or the rubric's) exists and parses;
* each bar on a judge metric (``judge.NAME.CRITERION``) names a judge of the suite
  and, for a pointwise judge, one of its rubric's criteria;
* each ``openai_server`` candidate's options are known and safe (key variable,
  ``base_url`` transport, ``serve`` or ``base_url`` set);
* each benchmark's task is known (MMLU's bundled tasks, or an lm-eval task found
  offline, in ``include_path`` or built in).

Every error is one line: the suite file and line, the field, what is wrong, what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from evalkit.errors import ConfigError, EvalkitError

if TYPE_CHECKING:
    from evalkit.judges.rubric import Rubric
    from evalkit.suite.config import SuiteConfig


def _where(suite: SuiteConfig, location: Sequence[str | int]) -> str:
    """Return ``suite.yaml:LINE: field.path`` for a location in the suite file."""
    from evalkit.files.yaml_source import line_of, load_yaml_with_nodes

    field = ".".join(str(part) for part in location)
    try:
        _, node = load_yaml_with_nodes(suite.source)
    except EvalkitError:  # a suite built in code has no file to point into
        return f"{suite.source}: {field}"
    line = line_of(node, location)
    return f"{suite.source}:{line}: {field}" if line is not None else f"{suite.source}: {field}"


def _judge_rubrics(suite: SuiteConfig) -> dict[str, tuple[int, Rubric]]:
    """Load every judge's rubric and labels; return judge key -> (entry index, rubric)."""
    # numpy (via calibration): loaded only when labels are read
    from evalkit.judges.calibration import load_labels
    from evalkit.judges.rubric import load_rubric

    rubrics: dict[str, tuple[int, Rubric]] = {}
    for index, spec in enumerate(suite.judges):
        path = suite.resolve(spec.rubric)
        if not path.exists():  # a FIFO or directory is refused by load_rubric, below
            raise ConfigError(f"{_where(suite, ['judges', index, 'rubric'])}: rubric file {path} not found; "
                              "check the path (`evalkit rubric new NAME` writes a starting one)")
        try:
            rubric = load_rubric(path)
        except ConfigError as exc:
            raise ConfigError(f"{_where(suite, ['judges', index, 'rubric'])}: {exc}") from None
        labels = suite.resolve(spec.labels) if spec.labels else rubric.labels_path()
        if labels is not None:
            field: list[str | int] = ["judges", index, "labels" if spec.labels else "rubric"]
            if not labels.exists():  # a FIFO or directory is refused by load_labels, below
                raise ConfigError(f"{_where(suite, field)}: labels file {labels} not found; "
                                  "fix the path, or drop `labels:` to judge uncalibrated")
            try:
                load_labels(labels, rubric)
            except EvalkitError as exc:
                raise ConfigError(f"{_where(suite, field)}: {exc}") from None
        rubrics[spec.name or rubric.name] = (index, rubric)
    return rubrics


def _check_judge_bars(suite: SuiteConfig, rubrics: dict[str, tuple[int, Rubric]]) -> None:
    for index, bar in enumerate(suite.bars):
        parts = (bar.metric or "").split(".")
        if parts[0] != "judge" or len(parts) < 2:
            continue
        if parts[1] not in rubrics:
            known = ", ".join(sorted(rubrics)) or "none"
            raise ConfigError(f"{_where(suite, ['bars', index])}: no judge named '{parts[1]}' measures "
                              f"'{bar.metric}'; judges: {known}")
        spec_index, rubric = rubrics[parts[1]]
        criteria = list(rubric.criterion_names)
        pointwise = getattr(suite.judges[spec_index], "mode", "pointwise") == "pointwise"
        if pointwise and len(parts) == 3 and parts[2] not in criteria:
            raise ConfigError(f"{_where(suite, ['bars', index])}: rubric '{rubric.name}' has no criterion "
                              f"'{parts[2]}'; its criteria: {', '.join(criteria)}")


def _check_benchmarks(suite: SuiteConfig) -> None:
    from evalkit.benchmarks.evaluate import prepare_benchmark

    for index, spec in enumerate(suite.benchmarks):
        try:
            prepare_benchmark(spec, suite.base_dir)
        except EvalkitError as exc:
            raise ConfigError(f"{_where(suite, ['benchmarks', index, 'task'])}: {exc}") from None


def _check_backend_options(suite: SuiteConfig) -> None:
    # Imported here, not at the top: the endpoint client is only needed by suites that use it.
    from evalkit.models.openai_server import check_options

    for index, candidate in enumerate(suite.candidates):
        if candidate.backend != "openai_server":
            continue
        try:
            check_options(candidate.options)
        except ConfigError as exc:
            raise ConfigError(f"{_where(suite, ['candidates', index, 'options'])}: {exc}") from None


def check_suite_references(suite: SuiteConfig) -> None:
    """Open every file and name the suite refers to (see the module docstring).

    Raises:
        ConfigError: one line naming the suite file, line and field, and what to do.
    """
    _check_backend_options(suite)
    rubrics = _judge_rubrics(suite)
    _check_judge_bars(suite, rubrics)
    _check_benchmarks(suite)
