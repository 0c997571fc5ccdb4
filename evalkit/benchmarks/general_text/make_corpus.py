"""Rebuild the ``evalkit_general_text`` corpus (``corpus.jsonl``) from the packages it comes from.

Run: ``.venv/bin/python evalkit/benchmarks/general_text/make_corpus.py [--download]``

Three genres of human-written English, each from a package with a clear licence (see
``README.md`` beside this file and ``LICENSES/``):

* ``essay``: the Jargon File 4.4.7 (public domain), Debian package ``jargon-text``:
  its essay chapters and the two prose appendices (Hacker Folklore, A Portrait of
  J. Random Hacker); the lexicon itself is left out.
* ``reference``: the Python language reference as CPython ships it in
  ``pydoc_data/topics.py`` (PSF licence), prose paragraphs only (code, grammar and
  tables left out).
* ``dialogue``: the English conversations of the PyPI package ``chatterbot-corpus``
  (BSD-3-Clause), as ``A:``/``B:`` turns; its tech-support and coding files are left out
  (support conversations are the classifier's own domain, code is not English prose).

Each source's paragraphs are packed, in order, into documents of ``MIN_WORDS`` to
``MAX_WORDS`` words; at most ``PER_GENRE`` documents per genre are kept, spread evenly
over the source. The packages are read from the files given, or fetched with the
ordinary clients (``apt-get download``, ``pip download --no-deps``) with ``--download``.
The output records which package version each document came from.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.jsonl"
MIN_WORDS, MAX_WORDS = 150, 220
PER_GENRE = 20

JARGON_PACKAGE = ("jargon-text", "4.4.7-4.1")
CHATTERBOT_PACKAGE = ("chatterbot-corpus", "1.3.3")
# The Jargon File's essay chapters and prose appendices (revision history, pronunciation
# and entry-format chapters, the lexicon and the bibliography are left out).
JARGON_SECTIONS = (
    "Chapter 1. ", "Chapter 2. ", "Chapter 4. ", "Chapter 5. ", "Chapter 7. ", "Chapter 8. ", "Chapter 9. ",
    "Appendix A. ", "Appendix B. ",
)
# Support conversations are the classifier's domain; code is not English prose.
CHATTERBOT_LEFT_OUT = ("tech_support.yml", "coding.yml")


SECTION_END = "\x00section-end\x00"
"""Marks where a source section ends: a document never spans two."""


def words(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``."""
    return len(text.split())


def pack(paragraphs: Iterable[str]) -> Iterator[str]:
    """Join consecutive paragraphs into documents of ``MIN_WORDS`` to ``MAX_WORDS`` words.

    A paragraph longer than ``MAX_WORDS`` is cut at a sentence end; a document that
    would stay under ``MIN_WORDS`` when its source section ends is dropped.
    """
    current: list[str] = []
    for paragraph in paragraphs:
        if paragraph is SECTION_END:
            if words("\n\n".join(current)) >= MIN_WORDS:
                yield "\n\n".join(current)
            current = []
            continue
        if words(paragraph) > MAX_WORDS:
            paragraph = _cut_at_sentence(paragraph, MAX_WORDS)
        if current and words("\n\n".join([*current, paragraph])) > MAX_WORDS:
            if words("\n\n".join(current)) >= MIN_WORDS:
                yield "\n\n".join(current)
            current = []
        current.append(paragraph)
    if words("\n\n".join(current)) >= MIN_WORDS:
        yield "\n\n".join(current)



def _cut_at_sentence(paragraph: str, limit: int) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", paragraph)
    kept: list[str] = []
    for sentence in sentences:
        if kept and words(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    return " ".join(kept)


def spread(documents: list[str], count: int) -> list[str]:
    """Return ``count`` documents taken evenly across the list (all when there are fewer)."""
    if len(documents) <= count:
        return documents
    return [documents[i * len(documents) // count] for i in range(count)]


# --- essay: the Jargon File ------------------------------------------------------------

def jargon_paragraphs(text: str) -> Iterator[str]:
    """Yield the prose paragraphs of the Jargon File's essay sections, unwrapped, cross-reference braces removed."""
    lines = text.replace("\u00a0", " ").splitlines()  # headings use no-break spaces
    heading = re.compile(r"^(Chapter \d+\. |Appendix [A-Z]\. |Glossary$|Bibliography$|Part )")
    keep = False
    block: list[str] = []
    for line in lines:
        if heading.match(line):
            if block and keep:
                yield from _jargon_block(block)
            if keep:
                yield SECTION_END
            block = []
            keep = line.startswith(JARGON_SECTIONS)
            continue
        if not keep:
            continue
        if not line.strip():
            if block:
                yield from _jargon_block(block)
            block = []
            continue
        block.append(line)
    if block and keep:
        yield from _jargon_block(block)


def _jargon_block(block: list[str]) -> Iterator[str]:
    # Headings and table-of-contents entries sit flush left or are one short line.
    if not block[0].startswith("   ") or (len(block) == 1 and words(block[0]) < 8):
        return
    if any(set(line.strip()) <= set("─│┌┐└┘├┤┬┴┼ -=|+") for line in block):
        return
    text = " ".join(line.strip() for line in block)
    text = re.sub(r"[{}]", "", text)
    if words(text) >= 12:
        yield text


# --- reference: CPython's language reference -------------------------------------------

def reference_paragraphs(topics: dict[str, str]) -> Iterator[str]:
    """Yield the prose paragraphs of pydoc's topics, topic by topic (code, grammar, tables and headings left out)."""
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            lines = block.splitlines()
            if not lines or lines[0].startswith((" ", "\t")):
                continue
            if any(set(line) <= set("*=-+| ") for line in lines) or ">>>" in block or "::=" in block:
                continue
            text = " ".join(line.strip() for line in lines)
            if words(text) >= 12:
                yield text
        yield SECTION_END


# --- dialogue: chatterbot-corpus ---------------------------------------------------------

def dialogue_paragraphs(files: dict[str, str]) -> Iterator[str]:
    """Yield each English conversation as alternating ``A:``/``B:`` turns, file by file."""
    import yaml

    for name in sorted(files):
        if name in CHATTERBOT_LEFT_OUT:
            continue
        data = yaml.safe_load(files[name]) or {}
        for conversation in data.get("conversations", []):
            turns = [str(turn).strip() for turn in conversation if str(turn).strip()]
            if len(turns) < 2:
                continue
            yield "\n".join(f"{'AB'[i % 2]}: {turn}" for i, turn in enumerate(turns))
        yield SECTION_END


# --- reading the packages ----------------------------------------------------------------

def read_jargon(deb: Path) -> str:
    """Return ``jargon.txt`` from the ``jargon-text`` Debian package."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        found = next(Path(tmp).rglob("jargon.txt.gz"))
        return gzip.decompress(found.read_bytes()).decode("utf-8")


def read_chatterbot(archive: Path) -> dict[str, str]:
    """Return file name -> YAML text of chatterbot-corpus's English files (from its wheel or sdist)."""
    pattern = re.compile(r"chatterbot_corpus/data/english/([^/]+\.yml)$")
    files: dict[str, str] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                if match := pattern.search(name):
                    files[match.group(1)] = wheel.read(name).decode("utf-8")
    else:
        with tarfile.open(archive) as sdist:
            for member in sdist.getmembers():
                if (match := pattern.search(member.name)) and (handle := sdist.extractfile(member)):
                    files[match.group(1)] = io.TextIOWrapper(handle, encoding="utf-8").read()
    return files


def download(directory: Path) -> tuple[Path, Path]:
    """Fetch the two packages with the ordinary clients; return (jargon .deb, chatterbot wheel)."""
    name, version = JARGON_PACKAGE
    subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=directory, check=True)
    name, version = CHATTERBOT_PACKAGE
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(directory),
                    f"{name}=={version}"], check=True)
    return next(directory.glob("jargon-text_*.deb")), next(directory.glob("chatterbot_corpus-*.whl"))


def build(jargon_deb: Path, chatterbot: Path) -> list[dict[str, str]]:
    """Return the corpus records: ``id``, ``genre``, ``source``, ``text``, in genre order."""
    import pydoc_data.topics

    python = ".".join(map(str, sys.version_info[:3]))
    sources = [
        ("essay", f"Jargon File 4.4.7 (Debian jargon-text {JARGON_PACKAGE[1]})",
         pack(jargon_paragraphs(read_jargon(jargon_deb)))),
        ("reference", f"CPython {python} pydoc_data/topics.py", pack(reference_paragraphs(pydoc_data.topics.topics))),
        ("dialogue", f"chatterbot-corpus {CHATTERBOT_PACKAGE[1]} (PyPI), English",
         pack(dialogue_paragraphs(read_chatterbot(chatterbot)))),
    ]
    records = []
    for genre, source, documents in sources:
        for index, text in enumerate(spread(list(documents), PER_GENRE)):
            records.append({"id": f"{genre}/{index:02d}", "genre": genre, "source": source, "text": text})
    return records


def build_from_packages(
    argv: list[str] | None,
    description: str,
    packages: dict[str, str],
    download_help: str,
    default_out: Path,
    download: Callable[[Path], tuple[Path, ...]],
    build: Callable[..., list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Parse a build script's command line, build its records from the packages and write them as JSONL.

    The command line is one option per package (``packages``: flag -> help), ``--download``
    to fetch them all instead, and ``--out``. Shared by this script and
    ``continuation/make_items.py``.

    Args:
        argv: the arguments (None: the process's).
        description: the script's one-line description.
        packages: each package's flag (``--jargon-deb``) and help, in ``build``'s and ``download``'s order.
        download_help: the help of ``--download``.
        default_out: where the records go without ``--out``.
        download: fetches the packages into a directory and returns their paths.
        build: makes the records from the packages' paths.

    Returns:
        The records written.
    """
    parser = argparse.ArgumentParser(description=description)
    for flag, help_text in packages.items():
        parser.add_argument(flag, type=Path, help=help_text)
    parser.add_argument("--download", action="store_true", help=download_help)
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    flags = list(packages)
    with tempfile.TemporaryDirectory() as tmp:
        if args.download:
            paths = download(Path(tmp))
        else:
            paths = tuple(getattr(args, flag.removeprefix("--").replace("-", "_")) for flag in flags)
        if any(path is None for path in paths):
            parser.error(f"give {', '.join(flags[:-1])} and {flags[-1]}, or --download")
        records = build(*paths)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return records


def main(argv: list[str] | None = None) -> int:
    """Build ``corpus.jsonl`` from the given (or downloaded) packages and print its size per genre."""
    records = build_from_packages(
        argv, __doc__.splitlines()[0],
        {"--jargon-deb": f"the {JARGON_PACKAGE[0]} .deb", "--chatterbot": "the chatterbot-corpus wheel or sdist"},
        "fetch both packages first", CORPUS, download, build,
    )
    for genre in dict.fromkeys(r["genre"] for r in records):
        chosen = [r for r in records if r["genre"] == genre]
        print(f"{genre}: {len(chosen)} documents, {sum(words(r['text']) for r in chosen)} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
