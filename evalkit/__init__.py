"""evalkit: evaluate and regression-test fine-tuned language models."""

from evalkit.api import run_suite
from evalkit.errors import (
    BackendUnavailable,
    BenchmarkError,
    ConfigError,
    DataError,
    EvalkitError,
    JudgeError,
    ModelError,
    OutputExists,
    RegressionFound,
    StoreError,
)
from evalkit.record.results import CandidateResult, ItemResult, RunResult
from evalkit.suite.config import SuiteConfig, load_suite

__all__ = [
    "BackendUnavailable",
    "BenchmarkError",
    "CandidateResult",
    "ConfigError",
    "DataError",
    "EvalkitError",
    "ItemResult",
    "JudgeError",
    "ModelError",
    "OutputExists",
    "RegressionFound",
    "RunResult",
    "StoreError",
    "SuiteConfig",
    "load_suite",
    "run_suite",
]
