"""Rebuild the replay data (``handbook.jsonl``): general English text a training run mixes in.

Run: ``.venv/bin/python data/replay/make_replay.py --download``

The article's remedy for a fine-tune that loses general capability includes mixing general
text into training ("replay"). This file is that text for the classifier recipes
(``train/classifier-lora-replay.yaml``): passages of *The Debian Administrator's
Handbook* (Debian package ``debian-handbook``, GPL-2.0+ or CC-BY-SA-3.0), its English
HTML's prose paragraphs, with the code, command output and tables left out.

Why this book: it is human-written English prose of a genre none of evalkit's probes use
(``evalkit_general_text`` reads the Jargon File's essays, the Python language reference
and chatterbot conversations; ``evalkit_continuation`` the Jargon File's lexicon, the
Python tutorial and the same conversations). A passage is dropped when it shares a word
13-gram with either probe or with the classifier data, the contamination stage's own
test, so the probes still measure text the replay never trained on.

Each record is one chat turn: ``prompt`` asks to continue the passage's opening sentences
and ``completion`` is the rest of the passage, so trl trains on the book's own words (the
loss covers the completion only, as for the task's examples). ``PASSAGES`` passages are
kept, spread evenly over the book.
"""

from __future__ import annotations

import html.parser
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REPLAY = HERE / "handbook.jsonl"
PROBES = REPO / "evalkit" / "benchmarks"
sys.path.insert(0, str(PROBES / "general_text"))
sys.path.insert(0, str(PROBES / "continuation"))

from make_corpus import build_from_packages  # noqa: E402  (one command line for every build script)
from make_items import overlap_filter, read_deb, sentence_splitter, words  # noqa: E402

HANDBOOK_PACKAGE = ("debian-handbook", "11.20220922")
PASSAGES = 256
PASSAGE_WORDS = (70, 100)
"""Words in a passage: at least the first, at most the second (whole sentences)."""
OPENING_WORDS = 15
"""The opening (the prompt's part) is the passage's first sentences up to at least this many words."""
INSTRUCTION = "Continue this passage from a technical book."


class _ParagraphParser(html.parser.HTMLParser):
    """Collect the text of the book's prose paragraphs (``<div class="para">``), code and nested blocks left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._depth = 0  # nesting of divs inside the open paragraph (0: none open)
        self._skip = 0  # open <pre>/<table> or nested <div> elements inside it
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and self._depth == 0 and ("class", "para") in attrs:
            self._depth, self._text = 1, []
        elif self._depth and tag == "div":
            self._depth += 1
            self._skip += 1
        elif self._depth and tag in ("pre", "table"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if not self._depth:
            return
        if tag in ("pre", "table"):
            self._skip -= 1
        elif tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self.paragraphs.append(" ".join("".join(self._text).split()))
            else:
                self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._depth and not self._skip:
            self._text.append(data)


def chapter_paragraphs(page: str) -> list[str]:
    """Return the prose paragraphs of one HTML page of the book, in order."""
    parser = _ParagraphParser()
    parser.feed(page)
    # A paragraph that introduces code ("...with the following command:") is cut off from it.
    return [p for p in parser.paragraphs if words(p) >= 12 and not p.rstrip().endswith(":")]


def passages(pages: dict[str, str], split: Callable[[str], list[str]]) -> Iterator[tuple[str, list[str]]]:
    """Yield (page, sentences) passages of ``PASSAGE_WORDS`` words, consecutive sentences of one page."""
    low, high = PASSAGE_WORDS
    for name, page in sorted(pages.items()):
        current: list[str] = []
        for paragraph in chapter_paragraphs(page):
            for sentence in split(paragraph):
                if words(" ".join([*current, sentence])) > high:
                    if words(" ".join(current)) >= low:
                        yield name, current
                    current = []
                    if words(sentence) > high:
                        continue
                current.append(sentence)
        if words(" ".join(current)) >= low:
            yield name, current


def record(page: str, sentences: list[str]) -> dict[str, str] | None:
    """Return the replay record of one passage: its opening in the prompt, the rest as the completion."""
    for cut in range(1, len(sentences)):
        if words(" ".join(sentences[:cut])) >= OPENING_WORDS:
            rest = " ".join(sentences[cut:])
            if words(rest) < PASSAGE_WORDS[0] // 2:
                return None
            return {"prompt": f"{INSTRUCTION}\n\n{' '.join(sentences[:cut])}", "completion": rest,
                    "source": f"debian-handbook {HANDBOOK_PACKAGE[1]}: {page}"}
    return None


def spread(values: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    """Return ``count`` values taken evenly over the list (all of them when there are fewer)."""
    if len(values) <= count:
        return values
    return [values[i * len(values) // count] for i in range(count)]


def build(handbook_deb: Path) -> list[dict[str, str]]:
    """Return the replay records built from the handbook package."""
    pages = {name.rsplit("/", 1)[-1]: data.decode("utf-8")
             for name, data in read_deb(handbook_deb, r"/html/en-US/[^/]+\.html$").items()}
    split = sentence_splitter()
    clean = overlap_filter()  # no 13-gram shared with evalkit_general_text or the classifier data
    items_path = PROBES / "continuation" / "items.jsonl"
    continuation = [json.loads(line) for line in items_path.read_text(encoding="utf-8").splitlines()]
    sys.path.insert(0, str(REPO))
    from evalkit.contamination.ngrams import TrainingNgrams

    probe_index = TrainingNgrams([" ".join([str(i["context"]), *map(str, i["choices"])]) for i in continuation])
    kept = []
    for page, sentences in passages(pages, split):
        item = record(page, sentences)
        text = " ".join(sentences)
        if item is not None and clean(text) and probe_index.overlap([("passage", text)]).contaminated == 0:
            kept.append(item)
    return spread(kept, PASSAGES)


def download(directory: Path) -> tuple[Path]:
    """Fetch the handbook package with apt; return its path."""
    name, version = HANDBOOK_PACKAGE
    subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=directory, check=True)
    return (next(directory.glob(f"{name}_*.deb")),)


def main(argv: list[str] | None = None) -> int:
    """Build ``handbook.jsonl`` from the given (or downloaded) package and print its size."""
    records = build_from_packages(
        argv, (__doc__ or "").splitlines()[0], {"--handbook-deb": f"the {HANDBOOK_PACKAGE[0]} .deb"},
        "fetch the package first", REPLAY, download, build,
    )
    completion_words = sum(words(r["completion"]) for r in records)
    print(f"{len(records)} passages, {completion_words} completion words "
          f"({completion_words / len(records):.0f} on average)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
