"""The one exception tree of evalkit.

Every error a user can cause or meet carries a message that says what went wrong and
what to do, and an exit code the CLI returns::

    EvalkitError                 base class; exit code 2 (usage, config or input error)
    ├── ConfigError              a suite, rubric or train file is invalid
    ├── DataError                a dataset file is missing or malformed
    ├── ModelError               a model source does not resolve or a model fails to load
    ├── BackendUnavailable       an optional backend (vLLM, bitsandbytes) is not installed
    ├── JudgeError               a judge client cannot be built or keeps failing
    ├── BenchmarkError           a benchmark task or its data is unavailable
    ├── StoreError               the run store cannot be opened or migrated
    ├── OutputExists             an output directory holds files evalkit did not make
    └── RegressionFound          a bar is unmet or a candidate regressed; exit code 1

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; the
traceback is shown only with ``--debug``.
"""

from __future__ import annotations


class EvalkitError(Exception):
    """Base class of every error evalkit raises on purpose.

    Attributes:
        exit_code: the process exit code the CLI uses for this error.
    """

    exit_code: int = 2


class ConfigError(EvalkitError):
    """A suite, rubric or training config is invalid; the message names file, line, field."""


class DataError(EvalkitError):
    """A dataset file is missing or a line of it is malformed."""


class ModelError(EvalkitError):
    """A model source does not resolve, or a model or adapter fails to load."""


class BackendUnavailable(EvalkitError):
    """An optional dependency is missing; the message names the extra to install."""


class JudgeError(EvalkitError):
    """A judge client cannot be built, or a judgment cannot be obtained."""


class BenchmarkError(EvalkitError):
    """A benchmark task, subject or its bundled data is unavailable."""


class StoreError(EvalkitError):
    """The SQLite run store cannot be opened, read or migrated."""


class OutputExists(EvalkitError):
    """An output path holds files evalkit did not make; nothing was replaced.

    Attributes:
        directory: the path evalkit refused to replace.
    """

    def __init__(self, directory: object, message: str) -> None:
        """Record the refused path with the message shown to the user."""
        super().__init__(message)
        self.directory = directory


class RegressionFound(EvalkitError):
    """A quality bar is unmet or a candidate regressed against the baseline."""

    exit_code = 1
