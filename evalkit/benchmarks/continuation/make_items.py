"""Rebuild the ``evalkit_continuation`` items (``items.jsonl``) from the packages they come from.

Run: ``.venv/bin/python evalkit/benchmarks/continuation/make_items.py --download``

Each item is a passage of human-written English cut at a sentence boundary, the true
next sentence (or, in a conversation, the true last turn), and three distractors: the
same kind of sentence taken from *other* passages of the same genre, the closest in
length to the true one among a seeded random sample, so that neither raw nor
length-normalised log-likelihood can win by length. The choices are shuffled (seeded),
so the true one's position is spread over all four. Three genres (see ``README.md``):

* ``lexicon``: the entries of the Jargon File's lexicon (4.4.7, public domain, Debian
  ``jargon-text``), the part of the file that ``evalkit_general_text`` leaves out;
* ``tutorial``: the prose of the Python tutorial, HOWTOs and FAQ (Debian
  ``python3.11-doc``, its reStructuredText sources; PSF licence), documents that
  ``evalkit_general_text`` (the language reference) does not use;
* ``dialogue``: the English conversations of ``chatterbot-corpus`` 1.3.3 (BSD-3-Clause)
  that no ``evalkit_general_text`` document contains.

A passage is dropped when it shares a word 13-gram with the ``evalkit_general_text``
corpus or with evalkit's training data (``data/classifier/``), the contamination
stage's own test, so the two probes are independent and neither measures what was
trained on. Sentences are split with nltk's punkt model as evalkit ships it offline
(``evalkit.benchmarks.probes``). Everything random is seeded by ``SEED``: the
same packages give the same file, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ITEMS = HERE / "items.jsonl"
REPO = HERE.parents[2]
GENERAL_TEXT = HERE.parent / "general_text" / "corpus.jsonl"
TRAINING_DATA = REPO / "data" / "classifier"

SEED = "evalkit-continuation-1"
PER_GENRE = 80
CONTEXT_WORDS = (60, 140)
"""Words in a context: at least the first, at most the second (sentences taken back from the cut)."""
CONTINUATION_WORDS = {"lexicon": (6, 25), "tutorial": (6, 25), "dialogue": (1, 25)}
"""Words in a true continuation or a distractor, per genre (an answer in a conversation may be one word)."""
DISTRACTOR_SAMPLE = 24
"""Distractors are the three closest in length among this many sentences drawn from other passages."""

JARGON_PACKAGE = ("jargon-text", "4.4.7-4.1")
PYTHON_DOC_PACKAGE = ("python3.11-doc", "3.11.2-6+deb12u9")
CHATTERBOT_PACKAGE = ("chatterbot-corpus", "1.3.3")
PYTHON_DOC_PARTS = ("tutorial/", "howto/", "faq/")
# A sense's part of speech ("vt. To fail..."), not prose.
_PART_OF_SPEECH = re.compile(r"^(?:(?:n|v|vt|vi|adj|adv|interj|excl|prep|conj|pref|suff|abbrev|pl|obs)\.[,\s]*)+")
# Cross-references and boilerplate, not prose: never a continuation or a distractor.
_NOT_A_CHOICE = re.compile(r"^(See|Compare|Contrast|Cf\.|Also|For more|For further|For details)\b")


@dataclass(frozen=True)
class Passage:
    """Consecutive text of one source document: its sentences, in order, each with its paragraph index.

    ``document`` names the source document (a lexicon entry, a documentation page, a
    chatterbot file): an item's distractors come from other documents. ``origin`` names
    the passage itself.
    """

    document: str
    origin: str
    title: str
    sentences: tuple[tuple[int, str], ...]


def words(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``."""
    return len(text.split())


def sentence_splitter() -> Callable[[str], list[str]]:
    """Return nltk's punkt English sentence splitter, loaded from the model evalkit ships (no download)."""
    sys.path.insert(0, str(REPO))
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer

    from evalkit.benchmarks.probes import downloads_refused, punkt_data_root

    root = str(punkt_data_root())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    with downloads_refused():
        tokenizer = PunktTokenizer("english")

    def split(text: str) -> list[str]:
        spans: list[list[int]] = []
        for start, end in tokenizer.span_tokenize(text):
            first = text[start:start + 1]
            # punkt ends a sentence at some abbreviations ("e.g. a tool"): a lowercase start continues it.
            if spans and not first.isupper() and not first.isdigit() and first not in "\"“'(":
                spans[-1][1] = end
            else:
                spans.append([start, end])
        return [" ".join(text[start:end].split()) for start, end in spans]

    return split


def passage(document: str, number: int, title: str, paragraphs: list[str],
            split: Callable[[str], list[str]]) -> Passage:
    """Return a passage of the paragraphs' sentences (each tagged with its paragraph's index)."""
    return Passage(document, f"{document}#{number}", title,
                   tuple((index, s) for index, text in enumerate(paragraphs) for s in split(text)))


# --- lexicon: the Jargon File's entries ----------------------------------------------------

def lexicon_passages(jargon: str, split: Callable[[str], list[str]]) -> Iterator[Passage]:
    """Yield each lexicon entry's prose as passages titled with its headword.

    Sense numbers and leading bracketed etymologies are dropped, ``{cross-reference}``
    braces removed and wrapped lines joined. A block that is not a prose paragraph
    (a quoted example, a table) ends the passage, so a passage never reads across it;
    the letter headings and the index of headwords between them are not entries.
    """
    header = re.compile(r"^   :(.+?):(?:\s|$)")
    start = jargon.index("\n   :", jargon.index("\nGlossary"))
    end = jargon.index("\nAppendix A. ")
    runs: list[list[str]] = []
    blocks: list[list[str]] = []
    headword: str | None = None

    def read_block(block: list[str]) -> str | None:
        text = re.sub(r"[{}]", "", " ".join(line.strip() for line in block))
        text = re.sub(r"^\[[^\]]*\]\s*", "", re.sub(r"^\d+\.\s+", "", text))
        text = _PART_OF_SPEECH.sub("", text)
        return text if words(text) >= 8 and text[-1:] in ".!?\"”)" else None

    def entry() -> Iterator[Passage]:
        run: list[str] = []
        for block in blocks:
            text = read_block(block)
            if text is None:
                runs.append(run)
                run = []
            else:
                run.append(text)
        runs.append(run)
        if headword is not None:
            kept = [run for run in runs if run]
            for number, paragraphs in enumerate(kept):
                yield passage(f"lexicon:{headword}", number, headword, paragraphs, split)
        runs.clear()
        blocks.clear()

    for line in jargon[start:end].splitlines():
        if match := header.match(line):
            yield from entry()
            headword = match.group(1)
        elif re.match(r"^  \S", line):  # a letter heading; the index of headwords below it is no entry
            yield from entry()
            headword = None
        elif not line.strip():
            if blocks and blocks[-1]:
                blocks.append([])
        elif headword is not None:
            if not blocks:
                blocks.append([])
            blocks[-1].append(line)
    yield from entry()


# --- tutorial: the Python tutorial, HOWTOs and FAQ -------------------------------------------

_ROLE = re.compile(r":(?P<role>[a-z:]+):`(?P<body>[^`]+)`")
_LINK = re.compile(r"`(?P<text>[^`<]+?)\s*<[^>]+>`__?")
_HEADING_RULE = re.compile(r"^([=\-~^\"'`*+#.:_])\1{2,}\s*$")


def _role_text(match: re.Match[str]) -> str:
    role, body = match.group("role"), match.group("body")
    if "<" in body and body.endswith(">"):
        return body[: body.index("<")].strip()
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].split(".")[-1]
    if role == "pep":
        return f"PEP {body}"
    if role == "rfc":
        return f"RFC {body}"
    if role == "abbr":
        return body.split(" (")[0]
    if role in ("func", "meth", "py:func", "py:meth") and not body.endswith(")"):
        return f"{body}()"  # Sphinx shows a function reference with parentheses
    return body


def rst_inline(text: str) -> str | None:
    """Return reStructuredText inline markup as the rendered page reads, or None when it cannot be resolved.

    A bare ``:ref:`label``` (rendered as a section title evalkit does not know), a
    substitution or a footnote makes the paragraph unusable.
    """
    if re.search(r":(ref|doc):`[^`<]+`", text) or re.search(r"\|\w[^|]*\|", text) or re.search(r"\[[#*\d]\w*\]_", text):
        return None
    text = _ROLE.sub(_role_text, text)
    text = _LINK.sub(lambda m: m.group("text"), text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`_{0,2}", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\1", text)
    text = text.replace("\\ ", "").replace(" --- ", " -- ")
    if text.endswith("::"):
        text = text[:-1]
    return " ".join(text.split())


def rst_runs(source: str) -> Iterator[tuple[str, list[str]]]:
    """Yield (section title, consecutive top-level prose paragraphs) of a reStructuredText file.

    A paragraph is a block that starts flush left and is not a directive, comment,
    list, table, field list or heading. Anything else (code, quotes, directive bodies,
    a heading) ends the run, so a passage never reads across what was left out.
    """
    title = ""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", source):
        lines = block.strip("\n").splitlines()
        if not lines:
            continue
        heading = len(lines) >= 2 and _HEADING_RULE.match(lines[-1]) and not _HEADING_RULE.match(lines[-2])
        first = lines[0]
        text = None
        if not (first.startswith((" ", "\t", "..", "* ", "- ", "+ ", "#", ">>>", "|", "=", "`", ":"))
                or re.match(r"^\d+\.\s|^\(?[a-z\d]\)\s", first)
                or any(_HEADING_RULE.match(line) for line in lines)):
            text = rst_inline(" ".join(line.strip() for line in lines))
        if text and words(text) >= 8 and text[-1:] in ".!?:)" and sum(c.isalpha() for c in text) > 0.6 * len(text):
            paragraphs.append(text)
            continue
        if paragraphs:
            yield title, paragraphs
        paragraphs = []
        if heading:
            title = lines[-2].strip()
    if paragraphs:
        yield title, paragraphs


def tutorial_passages(sources: dict[str, str], split: Callable[[str], list[str]]) -> Iterator[Passage]:
    """Yield each section of the tutorial, HOWTO and FAQ files as a passage, file by file in name order."""
    for name in sorted(sources):
        for number, (title, paragraphs) in enumerate(rst_runs(sources[name])):
            yield passage(f"tutorial:{name}", number, title, paragraphs, split)


# --- dialogue: chatterbot-corpus ---------------------------------------------------------------

def dialogue_passages(files: dict[str, str], general_text_dialogue: str) -> Iterator[Passage]:
    """Yield each English conversation of two or more turns that no general-text document contains.

    Each turn is one "sentence" (paragraph index = turn index); the item's context is
    the earlier turns, labelled ``A:``/``B:``, and the speaker label of the last. A
    conversation's document is its file (each file is one topic: AI, food, history...).
    """
    import yaml

    left_out = ("tech_support.yml", "coding.yml")  # support is the classifier's domain; code is not English prose
    for name in sorted(files):
        if name in left_out:
            continue
        data = yaml.safe_load(files[name]) or {}
        for number, conversation in enumerate(data.get("conversations", [])):
            turns = [" ".join(str(turn).split()) for turn in conversation if str(turn).strip()]
            if len(turns) < 2:
                continue
            text = "\n".join(f"{'AB'[i % 2]}: {turn}" for i, turn in enumerate(turns))
            if text in general_text_dialogue:
                continue
            yield Passage(f"dialogue:{name}", f"dialogue:{name}#{number}", name.removesuffix(".yml"),
                          tuple((index, turn) for index, turn in enumerate(turns)))


# --- items -----------------------------------------------------------------------------------

def render_context(genre: str, title: str, sentences: list[tuple[int, str]], cut: int) -> str:
    """Return what the model reads before the choices, the sentences before ``cut``.

    A prose context is taken back from the cut until it has ``CONTEXT_WORDS[0]`` words
    (never past ``CONTEXT_WORDS[1]``); a lexicon entry's opens with its headword; a
    conversation's turns are labelled and end with the next speaker's label.
    """
    if genre == "dialogue":
        turns = "\n".join(f"{'AB'[i % 2]}: {text}" for i, text in sentences[:cut])
        return f"{turns}\n{'AB'[cut % 2]}:"
    start = cut
    while start > 0 and words(" ".join(s for _, s in sentences[start - 1:cut])) <= CONTEXT_WORDS[1]:
        start -= 1
        if words(" ".join(s for _, s in sentences[start:cut])) >= CONTEXT_WORDS[0]:
            break
    text = ""
    for position in range(start, cut):
        paragraph, sentence = sentences[position]
        joiner = "" if position == start else ("\n\n" if paragraph != sentences[position - 1][0] else " ")
        text += joiner + sentence
    return f"{title}: {text}" if genre == "lexicon" else text


def is_choice(genre: str, text: str) -> bool:
    """Whether a sentence may be a continuation or a distractor: the genre's length, a whole sentence, prose."""
    low, high = CONTINUATION_WORDS[genre]
    if not low <= words(text) <= high or _NOT_A_CHOICE.match(text):
        return False
    return genre == "dialogue" or (text[:1].isupper() and text[-1:] in ".!?\"”)")


def cuts(genre: str, item: Passage) -> list[int]:
    """Return the sentence positions a passage may be cut before (the continuation's index)."""
    sentences = list(item.sentences)
    if genre == "dialogue":
        return [len(sentences) - 1] if is_choice(genre, sentences[-1][1]) else []
    found = []
    for cut in range(1, len(sentences)):
        # The real continuation goes on the paragraph of the context's last sentence.
        if not is_choice(genre, sentences[cut][1]) or sentences[cut][0] != sentences[cut - 1][0]:
            continue
        context = render_context(genre, item.title, sentences, cut)
        # A context ending in a colon announces what was left out (code, a list), not the next sentence.
        if CONTEXT_WORDS[0] <= words(context) <= CONTEXT_WORDS[1] + 10 and not context.endswith(":"):
            found.append(cut)
    return found


def passage_text(genre: str, item: Passage) -> str:
    """Return a whole passage as the model would read it (a conversation with its ``A:``/``B:`` labels)."""
    if genre == "dialogue":
        return "\n".join(f"{'AB'[i % 2]}: {text}" for i, text in item.sentences)
    return " ".join(text for _, text in item.sentences)


def spread(values: list[Passage], count: int) -> list[Passage]:
    """Return ``count`` values taken evenly across the list (all when there are fewer)."""
    if len(values) <= count:
        return values
    return [values[i * len(values) // count] for i in range(count)]


def build_genre(genre: str, source: str, passages: list[Passage],
                clean: Callable[[str], bool]) -> list[dict[str, object]]:
    """Return the genre's items: one per chosen passage, its distractors from the genre's other passages."""
    usable = [p for p in passages if cuts(genre, p) and clean(passage_text(genre, p))]
    pool = [(p.document, s) for p in usable for position, (_, s) in enumerate(p.sentences)
            if position > 0 and is_choice(genre, s)]
    if genre == "dialogue":  # an answer is drawn from other conversations' answers
        pool = [(p.document, p.sentences[-1][1]) for p in usable]
    records = []
    for index, item in enumerate(spread(usable, PER_GENRE)):
        rng = random.Random(f"{SEED}:{item.origin}")
        cut = rng.choice(cuts(genre, item))
        sentences = list(item.sentences)
        context = render_context(genre, item.title, sentences, cut)
        truth = sentences[cut][1]
        seen = {truth.casefold()}
        candidates = []
        for document, text in rng.sample(pool, len(pool)):
            if document == item.document or text.casefold() in seen or text in context:
                continue
            seen.add(text.casefold())
            candidates.append(text)
            if len(candidates) == DISTRACTOR_SAMPLE:
                break
        distractors = sorted(candidates, key=lambda text: abs(len(text) - len(truth)))[:3]
        choices = [truth, *distractors]
        rng.shuffle(choices)
        if not clean("\n".join([context, *choices])):  # as the model reads the item (the test's own check)
            raise SystemExit(f"{item.origin}: the item shares a 13-gram with general text or training data")
        records.append({"id": f"{genre}/{index:02d}", "genre": genre, "source": source, "origin": item.origin,
                        "context": context, "choices": choices, "answer": choices.index(truth)})
    return records


def interleave(groups: list[list[dict[str, object]]]) -> list[dict[str, object]]:
    """Return the groups' items interleaved (the first of each, then the second...), so a limit keeps every genre."""
    longest = max(len(group) for group in groups)
    return [group[i] for i in range(longest) for group in groups if i < len(group)]


# --- reading the packages ------------------------------------------------------------------------

def read_deb(deb: Path, pattern: str) -> dict[str, bytes]:
    """Return the files of a Debian package whose path matches ``pattern`` (relative name -> bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        return {str(path.relative_to(tmp)): path.read_bytes() for path in Path(tmp).rglob("*")
                if path.is_file() and re.search(pattern, str(path.relative_to(tmp)))}


def read_python_docs(deb: Path) -> dict[str, str]:
    """Return ``tutorial/``, ``howto/`` and ``faq/`` reStructuredText sources of the docs package (name -> text)."""
    found = read_deb(deb, r"/_sources/(tutorial|howto|faq)/[^/]+\.rst\.txt$")
    return {re.sub(r".*/_sources/", "", name).removesuffix(".rst.txt"): data.decode("utf-8")
            for name, data in found.items() if not name.endswith("index.rst.txt")}


def download(directory: Path) -> tuple[Path, Path, Path]:
    """Fetch the three packages with the ordinary clients; return (jargon .deb, python docs .deb, chatterbot wheel)."""
    for name, version in (JARGON_PACKAGE, PYTHON_DOC_PACKAGE):
        subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=directory, check=True)
    name, version = CHATTERBOT_PACKAGE
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(directory),
                    f"{name}=={version}"], check=True)
    return (next(directory.glob("jargon-text_*.deb")), next(directory.glob("python3.11-doc_*.deb")),
            next(directory.glob("chatterbot_corpus-*.whl")))


def overlap_filter() -> Callable[[str], bool]:
    """Return a test that a text shares no word 13-gram with the general-text corpus or the training data."""
    sys.path.insert(0, str(REPO))
    from evalkit.contamination.ngrams import TrainingNgrams, training_texts

    texts = [json.loads(line)["text"] for line in GENERAL_TEXT.read_text(encoding="utf-8").splitlines()]
    for path in sorted(TRAINING_DATA.glob("*.jsonl")):
        texts.extend(training_texts(path))
    index = TrainingNgrams(texts)
    return lambda text: index.overlap([("passage", text)]).contaminated == 0


def build(jargon_deb: Path, python_doc_deb: Path, chatterbot: Path) -> list[dict[str, object]]:
    """Return the items of the three genres, interleaved."""
    sys.path.insert(0, str(HERE.parent / "general_text"))
    from make_corpus import read_chatterbot  # one reader of the chatterbot package for both probes

    split = sentence_splitter()
    clean = overlap_filter()
    jargon = gzip.decompress(read_deb(jargon_deb, r"jargon\.txt\.gz$").popitem()[1]).decode("utf-8")
    general_dialogue = "\n".join(json.loads(line)["text"] for line in GENERAL_TEXT.read_text(encoding="utf-8")
                                 .splitlines() if json.loads(line)["genre"] == "dialogue")
    python_doc_version = python_doc_deb.name.split("_")[1]
    groups = [
        build_genre("lexicon", f"Jargon File 4.4.7 lexicon (Debian jargon-text {JARGON_PACKAGE[1]})",
                    list(lexicon_passages(jargon.replace("\u00a0", " "), split)), clean),
        build_genre("tutorial", f"Python 3.11 tutorial, HOWTOs and FAQ (Debian python3.11-doc {python_doc_version})",
                    list(tutorial_passages(read_python_docs(python_doc_deb), split)), clean),
        build_genre("dialogue", f"chatterbot-corpus {CHATTERBOT_PACKAGE[1]} (PyPI), English",
                    list(dialogue_passages(read_chatterbot(chatterbot), general_dialogue)), clean),
    ]
    return interleave(groups)


def main(argv: list[str] | None = None) -> int:
    """Build ``items.jsonl`` from the given (or downloaded) packages and print its size per genre."""
    sys.path.insert(0, str(HERE.parent / "general_text"))
    from make_corpus import build_from_packages  # one command line for both probes' build scripts

    records = build_from_packages(
        argv, (__doc__ or "").splitlines()[0],
        {"--jargon-deb": f"the {JARGON_PACKAGE[0]} .deb", "--python-doc-deb": f"the {PYTHON_DOC_PACKAGE[0]} .deb",
         "--chatterbot": "the chatterbot-corpus wheel or sdist"},
        "fetch the three packages first", ITEMS, download, build,
    )
    for genre in dict.fromkeys(str(r["genre"]) for r in records):
        chosen = [r for r in records if r["genre"] == genre]
        context_words = sum(words(str(r["context"])) for r in chosen)
        print(f"{genre}: {len(chosen)} items, {context_words / len(chosen):.0f} context words on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
