"""One registry type for every extension seam: checks, backends, judge providers, run stages.

A :class:`Registry` maps names (what a suite writes: ``backend: hf``, ``- exact_match``)
to targets (a factory, a class, a stage function). An entry is either the target itself
or a lazy reference ``"package.module:attr"``, imported on its first lookup, so that
listing the names (``evalkit --help``, validating a suite) imports nothing heavy::

    BACKENDS = Registry("backend", {"hf": "evalkit.models.hf:HFBackend"})
    BACKENDS.register("mine", MyBackend)        # or @BACKENDS.decorator("mine")
    BACKENDS.get("hf")                          # imports evalkit.models.hf now
    BACKENDS.names()                            # ['hf', 'mine'], nothing imported

The one duplicate rule: registering a name again with the *same* target (the object, or
a lazy reference naming the same ``module:qualname``) is a no-op, so a module that
registers itself on import may be imported twice; a *different* target raises
:class:`DuplicateName`. Looking up a name that is not registered raises
:class:`UnknownName`, whose message lists what is available. Entries keep their
registration order (run stages run in it).

This module imports nothing of evalkit's: every layer may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["DuplicateName", "Registry", "UnknownName", "reference_of"]

T = TypeVar("T")


class UnknownName(LookupError):
    """A name that is not registered; the message lists the registered ones."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        super().__init__(kind, name)
        self.kind = kind
        self.name = name
        self.available = available

    def __str__(self) -> str:
        return f"unknown {self.kind} '{self.name}'; available: {', '.join(self.available) or 'none'}"


class DuplicateName(ValueError):
    """A name registered a second time with a different target."""


def reference_of(target: Any) -> str | None:
    """Return ``"module:qualname"`` of an object defined at a module's top level, else None."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def _is_reference(entry: Any) -> bool:
    return isinstance(entry, str) and ":" in entry


class Registry(Generic[T]):
    """Names -> targets, with lazy ``"module:attr"`` entries and one duplicate rule.

    Args:
        kind: what is registered, for messages (``backend``, ``check``...).
        entries: initial entries, name -> target or lazy reference, in order.
    """

    def __init__(self, kind: str, entries: Mapping[str, T | str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, target: T | str) -> None:
        """Register ``target`` (or a lazy ``"module:attr"`` reference) under ``name``.

        Raises:
            DuplicateName: ``name`` is registered with a different target.
        """
        if name in self._entries and not self._same(self._entries[name], target):
            raise DuplicateName(
                f"a {self.kind} named '{name}' is already registered ({self._describe(self._entries[name])}); "
                f"pick another name than for {self._describe(target)}"
            )
        if name not in self._entries or not _is_reference(target):
            # A resolved target replaces its own lazy reference; a reference never replaces an object.
            self._entries[name] = target

    def decorator(self, name: str) -> Callable[[T], T]:
        """Return a decorator registering what it decorates under ``name``."""

        def register(target: T) -> T:
            self.register(name, target)
            return target

        return register

    def get(self, name: str) -> T:
        """Return the target registered under ``name``, importing a lazy entry's module now.

        Raises:
            UnknownName: nothing is registered under ``name``.
            ImportError: a lazy entry's module (or something it imports) cannot be imported.
        """
        if name not in self._entries:
            raise UnknownName(self.kind, name, self.names())
        entry = self._entries[name]
        if _is_reference(entry):
            assert isinstance(entry, str)
            module_name, _, attr = entry.partition(":")
            target: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                target = getattr(target, part)
            self._entries[name] = target
            return target  # type: ignore[no-any-return]
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        """Return the registered names, sorted (nothing is imported)."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """Return (name, target) for every entry in registration order, importing lazy ones."""
        return [(name, self.get(name)) for name in list(self._entries)]

    def is_loaded(self, name: str) -> bool:
        """True when ``name`` is registered and its target is imported (not a lazy reference)."""
        return name in self._entries and not _is_reference(self._entries[name])

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    @staticmethod
    def _same(existing: Any, new: Any) -> bool:
        if existing is new:
            return True
        left = existing if _is_reference(existing) else reference_of(existing)
        right = new if _is_reference(new) else reference_of(new)
        return left is not None and left == right

    @staticmethod
    def _describe(entry: Any) -> str:
        return entry if _is_reference(entry) else (reference_of(entry) or repr(entry))
