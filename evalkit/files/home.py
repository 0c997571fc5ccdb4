"""Where evalkit keeps its files (data and cache directories), how it writes them, and its content digest.

* Data (the run store, ``evalkit.db``: history that must survive clearing caches):
  ``$EVALKIT_HOME`` if set, else ``$XDG_DATA_HOME/evalkit``, else ``~/.local/share/evalkit``.
* Caches (converted models, generated benchmark tasks, judgments: all rebuilt on demand):
  ``$EVALKIT_HOME`` if set, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``.

``EVALKIT_HOME`` keeps everything in one directory, as before. Earlier versions kept the
run store in the cache directory; :func:`store_file` finds such a store and moves it to
the data directory once (or, while it looks open, uses it where it is), with a warning.

Also here:

* One content digest for everything evalkit identifies by value: configs, cache keys, prompts, files
  (:func:`json_digest`, :func:`files_digest`, :func:`tokenizer_digest`).
* Crash-safe writes: every file and directory evalkit produces appears whole or not at all
  (:func:`write_text`, :func:`staged_directory`, :func:`confined_path`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, OutputExists
from evalkit.record.run_facts import evalkit_version, utc_now

HOME_ENV = "EVALKIT_HOME"
APP_DIR = "evalkit"
DATA_DIR_HELP = "$EVALKIT_HOME, else $XDG_DATA_HOME/evalkit, else ~/.local/share/evalkit"
"""Where the data directory is, in words for help texts."""
STORE_DEFAULT_HELP = f"$EVALKIT_STORE, else evalkit.db in evalkit's data directory ({DATA_DIR_HELP})"
"""The run store's default location, in words for help texts."""
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class StoreLocationWarning(UserWarning):
    """The run store was found in the old cache location (moved or used in place)."""


def _xdg_dir(variable: str, fallback: str) -> Path:
    # The XDG spec: a relative value is invalid and must be ignored.
    value = os.environ.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path(fallback).expanduser()
    return base / APP_DIR


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_home() -> Path:
    """Return (and create) the directory for run history: ``$EVALKIT_HOME`` or ``$XDG_DATA_HOME/evalkit``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return _made(Path(override).expanduser())
    return _made(_xdg_dir("XDG_DATA_HOME", "~/.local/share"))


def cache_home() -> Path:
    """Return (and create) the directory for caches: ``$EVALKIT_HOME`` or ``$XDG_CACHE_HOME/evalkit``."""
    override = os.environ.get(HOME_ENV)
    if override:
        return _made(Path(override).expanduser())
    return _made(_xdg_dir("XDG_CACHE_HOME", "~/.cache"))


def evalkit_home() -> Path:
    """Return (and create) evalkit's cache directory (the same as :func:`cache_home`)."""
    return cache_home()


def store_file(filename: str) -> Path:
    """Return the run store's path in the data directory, moving one left in the cache directory.

    When ``EVALKIT_HOME`` is unset, the data directory has no ``filename`` and the cache
    directory has one (where earlier versions kept it), the file and its SQLite sidecars
    are moved across and a :class:`StoreLocationWarning` says so. A store whose write-ahead
    log is present may be open in another process: it is used in place, with a warning.
    """
    target = data_home() / filename
    if os.environ.get(HOME_ENV) or target.exists():
        return target
    legacy = _xdg_dir("XDG_CACHE_HOME", "~/.cache") / filename
    if not legacy.is_file():
        return target
    sidecars = [legacy.with_name(legacy.name + suffix) for suffix in _SQLITE_SIDECARS]
    if any(path.exists() for path in sidecars):
        warnings.warn(
            f"using the run store at {legacy} (the old cache location) in place: it looks open "
            f"elsewhere; when no evalkit runs, it will be moved to {target}",
            StoreLocationWarning, stacklevel=2,
        )
        return legacy
    shutil.move(str(legacy), str(target))
    warnings.warn(
        f"moved the run store from {legacy} (a cache directory, which tools clear) to {target}",
        StoreLocationWarning, stacklevel=2,
    )
    return target


# One content digest for everything evalkit identifies by value: configs, cache keys, prompts, files.
#
# Standard library only. The JSON form is canonical (keys sorted, text
# kept as written, values JSON lacks as their ``str``), so equal content always digests
# the same, whichever module asks. The file digests are stored in manifests and cache
# keys: what they hash (names and bytes, in the order given) must never change.

_BLOCK = 1 << 20


def json_digest(payload: Any) -> str:
    """Return the SHA-256 hex digest of ``payload``'s canonical JSON form."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path | str) -> str:
    """Return the hex SHA-256 of a file's bytes, read in blocks (a dataset's identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(directory: Path, names: Iterable[str]) -> str:
    """Return a SHA-256 over each named file under ``directory`` that exists: its name, then its bytes.

    Names are hashed in the order given (as UTF-8, with no separator, as evalkit always
    has); a name with no file behind it adds nothing, so an empty set digests as ``b""``.
    """
    digest = hashlib.sha256()
    for name in names:
        path = directory / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# Keys a loader writes into a saved config or tokenizer config that say how the files were
# loaded or where from, never how the model behaves: `HF_HUB_OFFLINE=1` alone turns
# `local_files_only` true in a saved tokenizer_config.json. Left out of the fingerprint.
LOADER_KEYS = frozenset({
    "_commit_hash", "_from_model_config", "_name_or_path", "cache_dir", "force_download", "gguf_file",
    "local_files_only", "name_or_path", "revision", "subfolder", "token", "tokenizer_file",
    "transformers_version", "trust_remote_code", "use_auth_token",
})
# Settings of a tokenizer call (truncate to N, pad to N), not of the tokenizer itself.
_TOKENIZER_RUNTIME_KEYS = frozenset({"padding", "truncation"})


def normalised_json(path: Path, dropped: frozenset[str]) -> bytes:
    """A JSON file's canonical form without the keys in ``dropped`` (top level); raw bytes if not JSON."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in dropped}
    return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()


def _decoding_file_bytes(path: Path) -> bytes:
    """What of a tokenizer or generation file decides behaviour: loader flags and call settings dropped."""
    if path.suffix != ".json":
        return path.read_bytes()
    dropped = LOADER_KEYS | _TOKENIZER_RUNTIME_KEYS if path.name == "tokenizer.json" else LOADER_KEYS
    return normalised_json(path, dropped)


def tokenizer_digest(directory: Path, names: Iterable[str]) -> str:
    """Return a SHA-256 over the named tokenizer/generation files as they decide behaviour.

    Each present file adds its name and its normalised content (JSON canonical, loader
    flags such as ``local_files_only`` and paths left out), so the same tokenizer saved
    online or offline, by one transformers version or another, digests the same.
    """
    digest = hashlib.sha256()
    for name in names:
        path = directory / name
        if path.is_file():
            digest.update(f"\n{name}\n".encode())
            digest.update(_decoding_file_bytes(path))
    return digest.hexdigest()


# Crash-safe writes: every file and directory evalkit produces appears whole or not at all.
#
# One mechanic serves all of them: write into a hidden staging sibling, ``fsync`` it, then
# ``rename`` it into place (atomic on one file system) and ``fsync`` the parent directory.
# A crash or Ctrl-C leaves at most a hidden ``.NAME-*.partial`` sibling, never a target
# that looks finished. A staging directory carries ``.evalkit-staging.json`` while it is
# being written, locked by the writing process, so that a later run can tell a stale one
# left by a kill (the lock died with its process) from one another process is writing
# (:func:`remove_stale_partials`).
#
# Directories carry a marker, ``.evalkit-made.json``, and evalkit replaces an existing
# directory only when it is empty or carries that marker (or ``evalkit-manifest.json``,
# the manifest trained adapters and merged models have always carried). Any other
# directory is the user's: it is left untouched and :class:`~evalkit.errors.OutputExists`
# says so, naming the directory and ``--force``. With ``force=True`` it is replaced.
#
# Paths built from stored data (a run id, a suite name) go through :func:`confined_path`,
# which refuses any name that would leave its directory.

MARKER_NAME = ".evalkit-made.json"
# Inside a staging directory while it is written; locked (flock) by the writer until published.
STAGING_MARKER = ".evalkit-staging.json"
# Adapters and merged models written before the marker existed carry their manifest.
_EVALKIT_FILES = (MARKER_NAME, "evalkit-manifest.json")
# A name stored data may contribute to a path: one component, no leading dot.
_SURROGATE = re.compile("[\ud800-\udfff]")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and every directory, deepest first."""
    for current, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(current, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_directory(Path(current))


def _umask() -> int:
    """Return the process umask without changing it (other threads may be creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _ordinary_mode(path: str | Path, directory: bool) -> None:
    """Give a staging file or directory the mode a plain ``open``/``mkdir`` would (mkstemp makes 0600/0700)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the whole new one.

    Args:
        path: the file to write (its parent directories are created).
        data: the bytes.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _ordinary_mode(staging, directory=False)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`write_bytes`).

    Lone surrogates, which no UTF encoding can carry, are written as U+FFFD.
    """
    return write_bytes(path, without_surrogates(text).encode(encoding))


def write_files_once(directory: Path, files: dict[str, str], last: str, last_text: Callable[[], str]) -> Path:
    """Write ``files`` and then ``last`` into ``directory``, once, under a lock; return ``directory``.

    ``last`` is written after every other file, so a directory holding it is complete:
    a later call (this process or another) that finds it writes nothing. Content-named
    caches (lm-eval task directories) use it.
    """
    from filelock import FileLock

    marker = directory / last
    if marker.is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory.parent / f"{directory.name}.lock")):
        if not marker.is_file():
            directory.mkdir(exist_ok=True)
            for name, text in files.items():
                write_text(directory / name, text)
            write_text(marker, last_text())
    return directory


def has_surrogates(text: str) -> bool:
    """Return True when ``text`` holds a lone surrogate (which UTF-8 cannot encode)."""
    return _SURROGATE.search(text) is not None


def without_surrogates(text: str) -> str:
    """Return ``text`` with each lone surrogate (not encodable as UTF-8) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if has_surrogates(text) else text


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, indent: int | None = None) -> str:
    r"""Return ``value`` as JSON that any UTF-8 file or SQLite column can hold.

    Text stays readable (no ``\u`` escapes for ordinary characters); lone surrogates,
    which UTF-8 cannot encode, become ``\udXXX`` escapes, so the JSON reads back to the
    very same string. Values JSON does not know are written with ``str``.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    return _SURROGATE.sub(_escape_surrogate, text) if has_surrogates(text) else text


def made_by_evalkit(directory: Path) -> bool:
    """Return True when ``directory`` carries evalkit's marker or manifest."""
    return any((Path(directory) / name).is_file() for name in _EVALKIT_FILES)


def replaceable(target: Path) -> bool:
    """Return True when evalkit may replace ``target``: absent, empty, or made by evalkit."""
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return True
    if not target.is_dir():
        return False
    return made_by_evalkit(target) or not any(target.iterdir())


def check_replaceable(target: Path, force: bool = False, remedy: str = "pass --force to replace it") -> None:
    """Refuse to go on when ``target`` holds something evalkit did not make.

    Call it before expensive work (training, merging) so the refusal comes first;
    :func:`staged_directory` checks again before it renames.

    Args:
        target: the path about to be replaced.
        force: replace it whatever it holds.
        remedy: the last words of the refusal: how to replace it after all.

    Raises:
        OutputExists: ``target`` is a file, or a non-empty directory without evalkit's
            marker, and ``force`` is False.
    """
    if force or replaceable(target):
        return
    what = "a directory" if Path(target).is_dir() else "a file"
    raise OutputExists(
        Path(target),
        f"refusing to replace {target}: it is {what} evalkit did not make (no {MARKER_NAME}) and it is not "
        f"empty; move it away, name another directory, or {remedy}",
    )


def mark_directory(directory: Path, kind: str) -> Path:
    """Write evalkit's marker into ``directory`` and return the marker's path.

    Args:
        directory: a directory evalkit made.
        kind: what it holds (``run``, ``adapter``, ``merged model``, ``converted model``).
    """
    marker = Path(directory) / MARKER_NAME
    record = {"made_by": "evalkit", "kind": kind, "evalkit_version": evalkit_version(),
              "created_at": utc_now()}
    marker.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return marker


def _remove(path: Path) -> None:
    """Remove a file, a symbolic link (never what it points at) or a directory tree."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _publish(staging: Path, target: Path, replace: bool, force: bool) -> None:
    """Rename ``staging`` to ``target``, moving an existing target aside first."""
    if not target.exists() and not target.is_symlink():
        os.rename(staging, target)
        return
    if not replace and not (target.is_dir() and not target.is_symlink() and not any(target.iterdir())):
        raise OutputExists(target, f"{target} appeared while evalkit was writing it; nothing was replaced, "
                                   "run again")
    check_replaceable(target, force)
    previous = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".previous", dir=target.parent))
    previous.rmdir()  # only its unique name is needed: rename refuses an existing non-empty one
    os.rename(target, previous)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(previous, target)
        raise
    _remove(previous)


@contextmanager
def staged_directory(target: Path, *, kind: str, force: bool = False, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging directory that becomes ``target`` when the block succeeds.

    On success the staging directory gets evalkit's marker, is fsynced and renamed into
    place; an existing ``target`` is replaced only when :func:`replaceable` (or ``force``).
    On an error the staging directory is removed and ``target`` is left as it was.

    Args:
        target: the directory to produce.
        kind: what it holds, recorded in the marker.
        force: replace ``target`` even when evalkit did not make it.
        replace: when False, an existing non-empty ``target`` is never replaced (run
            directories: each run gets a new one).

    Raises:
        OutputExists: ``target`` holds files evalkit did not make (checked before the
            block runs and again before the rename).
    """
    target = Path(os.path.abspath(target))
    if replace:
        check_replaceable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".partial", dir=target.parent))
    lock: int | None = None
    try:
        _ordinary_mode(staging, directory=True)
        lock = _claim_staging(staging, kind)
        yield staging
        _release_staging(staging, lock)
        lock = None
        mark_directory(staging, kind)
        _fsync_tree(staging)
        _publish(staging, target, replace, force)
    except BaseException:
        if lock is not None:
            os.close(lock)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_directory(target.parent)


def _claim_staging(staging: Path, kind: str) -> int:
    """Write the staging marker into ``staging`` and hold a lock on it; return the open descriptor."""
    marker = staging / STAGING_MARKER
    record = {"made_by": "evalkit", "kind": kind, "pid": os.getpid(), "host": socket.gethostname(),
              "created_at": utc_now()}
    descriptor = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(descriptor, (json.dumps(record) + "\n").encode("utf-8"))
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _release_staging(staging: Path, descriptor: int) -> None:
    """Remove the staging marker (it must not ship in the finished directory) and drop its lock."""
    try:
        (staging / STAGING_MARKER).unlink(missing_ok=True)
    finally:
        os.close(descriptor)


def remove_stale_partials(directory: Path, older_than: str) -> list[Path]:
    """Remove staging directories in ``directory`` that a killed evalkit process left behind.

    Only evalkit's own are touched: a hidden ``.NAME-*.partial`` directory (not a link)
    that holds evalkit's staging marker, created no later than ``older_than``, whose marker no
    process holds locked any more (its writer is gone: the lock dies with the process).
    One that another process is writing right now keeps its lock and is left alone, as
    is anything without the marker.

    Args:
        directory: the folder to tidy (a suite's run folder).
        older_than: an ISO UTC timestamp (:func:`evalkit.record.run_facts.utc_now`, the current run's
            start); ones created after it are kept.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".partial")):
            continue
        if entry.is_symlink() or not entry.is_dir() or not _stale_staging(entry / STAGING_MARKER, older_than):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _stale_staging(marker: Path, older_than: str) -> bool:
    """Return True when ``marker`` is evalkit's staging marker, older than ``older_than`` and unlocked."""
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        descriptor = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            record = json.loads(os.read(descriptor, 4096).decode("utf-8"))
        except (OSError, ValueError):
            return False
        if not (isinstance(record, dict) and record.get("made_by") == "evalkit"
                and isinstance(record.get("created_at"), str) and record["created_at"] <= older_than):
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # its writer still holds it: being written right now
        return True
    finally:
        os.close(descriptor)


def safe_name(name: object, where: str) -> str:
    """Return ``name`` when it is one plain path component (a run id, a suite name).

    Args:
        name: a value read from stored data (``summary.json``, the run store).
        where: what the name is and where it came from, for the error message.

    Raises:
        ConfigError: ``name`` is not a string matching ``SAFE_NAME``: letters, digits,
            ``.``, ``_``, ``-``, starting with a letter or digit (so no separator, no
            ``..``, no hidden name).
    """
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a valid name (letters, digits, '.', '_', '-', starting "
                          "with a letter or digit); the data is damaged or crafted, fix or regenerate it")
    return name


def confined_path(directory: Path, name: str, where: str) -> Path:
    """Return ``directory / name`` after checking ``name`` is one plain path component.

    Args:
        directory: the directory the path must stay in.
        name: a name built from stored data (a run id, a suite name, a file name).
        where: what the name is and where it came from, for the error message.

    Raises:
        ConfigError: ``name`` is not a :func:`safe_name`.
    """
    return Path(directory) / safe_name(name, where)
