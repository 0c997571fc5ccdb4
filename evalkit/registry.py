"""One registry type for every extension seam: checks, backends, judge providers, run stages.

A :class:`Registry` maps names (what a suite writes: ``backend: hf``, ``- exact_match``)
to targets (a check factory, a backend class, a stage function). Each target registers
once, where it is defined, with its seam's decorator; no table repeats the names::

    @register_backend("mock")               # evalkit.models.backend
    class MockBackend: ...

    BACKENDS = Registry("backend", builtin_modules=("evalkit.models.hf", "evalkit.models.mock", ...))
    BACKENDS.get("mock")                    # imports the built-in modules now, once
    BACKENDS.names()                        # the built-ins and every installed plugin's

A registry lists the *modules* that define its built-in entries, never their names, and
imports them the first time it is asked for a name it does not hold, or for its listing;
so importing evalkit (``evalkit --help``) imports none of them. The modules keep their
heavy imports (torch, vLLM, API SDKs) inside functions: importing them all costs little.
A name still missing then loads the plugins (:func:`load_plugins`): every module that an
installed distribution declares in the ``evalkit.plugins`` entry point group, imported
once, whose decorators register its checks, backends, judge providers and stages. A
plugin that fails to import is a :class:`PluginError` naming it and its distribution.

The one duplicate rule: registering a name again with the *same* target (the object, or
one defined at the same ``module:qualname``, as when a module is imported twice) is a
no-op; a *different* target raises :class:`DuplicateName`. A registration from outside
the built-in modules (a plugin's) imports the built-ins first, so a plugin that reuses a
built-in name fails in its own import, naming itself. Looking up a name nobody registered
raises :class:`UnknownName`, whose message lists what is available. Entries keep the
order of ``builtin_modules``, then their registration order (run stages run in it).

This module also holds the two registries the suite grammar validates names against
(:data:`BACKENDS`, :data:`JUDGE_PROVIDERS`); the check and stage registries sit beside
their seams. It imports only :mod:`evalkit.errors` (a leaf): every layer may use it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from evalkit.errors import ConfigError

__all__ = [
    "PLUGIN_GROUP",
    "DuplicateName",
    "Origin",
    "PluginError",
    "Registry",
    "UnknownName",
    "load_plugins",
    "reference_of",
]


T = TypeVar("T")

PLUGIN_GROUP = "evalkit.plugins"
"""The entry point group a plugin distribution declares its module(s) in (docs/plugins.md)."""


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


class PluginError(ConfigError):
    """An installed plugin failed to import (or to register); the message names it and its distribution."""


@dataclass(frozen=True)
class Origin:
    """Where one registered entry comes from, for listings (``evalkit plugins``).

    Attributes:
        kind: the seam (``check``, ``backend``...).
        name: the name suites use.
        defined_at: ``module:qualname`` of the target.
        source: ``evalkit`` for a built-in, else the distribution (name and version)
            whose package defines it, or the module that registered it at run time.
    """

    kind: str
    name: str
    defined_at: str
    source: str


def reference_of(target: Any) -> str | None:
    """Return ``"module:qualname"`` of an object defined at a module's top level, else None."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return f"{module}:{qualname}"


# One lock for every registry and the plugins: a lookup from a worker thread waits for
# another thread's loading instead of seeing half the names. Re-entrant, because a module
# being imported for a registry may look names up itself.
_LOADING = threading.RLock()
_plugins_state = "unloaded"  # then "loading", then "loaded"


def load_plugins() -> None:
    """Import, once, every module installed distributions declare under ``evalkit.plugins``.

    Importing a plugin module runs its decorators, which register its entries. Called by
    a registry when a name is not among its built-ins, and before a listing.

    Raises:
        PluginError: a plugin module failed to import (the message names the entry
            point, its module and its distribution, and the error); the next call tries again.
    """
    global _plugins_state
    with _LOADING:
        if _plugins_state != "unloaded":
            return  # loaded, or being loaded further up this thread's stack
        _plugins_state = "loading"
        try:
            for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
                try:
                    entry.load()
                except Exception as exc:  # any failure of a third party's import becomes one line
                    raise PluginError(
                        f"plugin '{entry.name}' ({entry.value}) from distribution {_distribution_of(entry)} "
                        f"failed to import: {type(exc).__name__}: {exc}; fix or uninstall that distribution"
                    ) from exc
        except BaseException:
            _plugins_state = "unloaded"
            raise
        _plugins_state = "loaded"


def _distribution_of(entry: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    if dist is None:
        return "(unknown)"
    return f"{dist.metadata['Name']} {dist.version}"


def _source_of(module: str) -> str:
    """Name the distribution that provides ``module`` (its top-level package), for listings."""
    top = module.partition(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if not names:
        return f"module {module} (not from an installed distribution)"
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in sorted(set(names)))


class Registry(Generic[T]):
    """Names -> targets, registered at their definitions; built-ins imported on demand, then plugins.

    Args:
        kind: what is registered, for messages (``backend``, ``check``...).
        builtin_modules: the modules whose import registers the built-in entries, in
            the order their entries are listed (and, for stages, run).
    """

    def __init__(self, kind: str, builtin_modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self.builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, T] = {}
        self._builtins_state = "unloaded"  # then "loading", then "loaded"

    def register(self, name: str, target: T) -> None:
        """Register ``target`` under ``name``.

        Raises:
            DuplicateName: ``name`` is registered with a different target.
        """
        if getattr(target, "__module__", None) not in self.builtin_modules:
            self.load_builtins()  # a plugin's name is checked against the built-ins, and listed after them
        if name in self._entries and not self._same(self._entries[name], target):
            raise DuplicateName(
                f"a {self.kind} named '{name}' is already registered ({self._describe(self._entries[name])}); "
                f"pick another name than for {self._describe(target)}"
            )
        self._entries[name] = target

    def decorator(self, name: str) -> Callable[[T], T]:
        """Return a decorator registering what it decorates under ``name``."""

        def register(target: T) -> T:
            self.register(name, target)
            return target

        return register

    def load_builtins(self) -> None:
        """Import the built-in modules (once), which registers the built-in entries."""
        with _LOADING:
            if self._builtins_state != "unloaded":
                return  # loaded, or being loaded further up this thread's stack
            self._builtins_state = "loading"
            try:
                for module in self.builtin_modules:
                    importlib.import_module(module)
            except BaseException:
                self._builtins_state = "unloaded"
                raise
            self._builtins_state = "loaded"

    def get(self, name: str) -> T:
        """Return the target registered under ``name``, importing the built-ins, then the plugins, if needed.

        Raises:
            UnknownName: nothing is registered under ``name``.
            PluginError: a plugin failed to import while looking for ``name``.
        """
        if name not in self._entries:
            self.load_builtins()
        if name not in self._entries:
            load_plugins()
        if name not in self._entries:
            raise UnknownName(self.kind, name, self.names())
        return self._entries[name]

    def names(self) -> list[str]:
        """Return every registered name, built-in and plugin, sorted."""
        return sorted(self._loaded())

    def items(self) -> list[tuple[str, T]]:
        """Return (name, target) for every entry: the built-in modules' order, then registration order."""
        entries = self._loaded()
        position = {module: index for index, module in enumerate(self.builtin_modules)}
        last = len(position)
        names = sorted(entries, key=lambda n: position.get(getattr(entries[n], "__module__", ""), last))
        return [(name, entries[name]) for name in names]

    def origins(self) -> list[Origin]:
        """Return where each entry comes from (built into evalkit, or which distribution), in :meth:`items` order."""
        return [Origin(self.kind, name, self._describe(target),
                       "evalkit" if getattr(target, "__module__", None) in self.builtin_modules
                       else _source_of(str(getattr(target, "__module__", "?"))))
                for name, target in self.items()]

    def _loaded(self) -> dict[str, T]:
        self.load_builtins()
        load_plugins()
        return dict(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except UnknownName:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _ in self.items()])

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, builtin_modules={self.builtin_modules!r})"

    @staticmethod
    def _same(existing: Any, new: Any) -> bool:
        if existing is new:
            return True
        left, right = reference_of(existing), reference_of(new)
        return left is not None and left == right

    @staticmethod
    def _describe(entry: Any) -> str:
        return reference_of(entry) or repr(entry)


# The seams' registries that the suite grammar validates names against live here, apart
# from the code they name (the judge clients, the model backends), so the suite config
# checks ``provider:`` and ``backend:`` without importing an API SDK, torch or vLLM. The
# check and stage registries live beside their seams (:mod:`evalkit.checks.registry`,
# :mod:`evalkit.stages`), which the grammar does not import.

# Judge providers: the names a suite's ``judge: {provider: ...}`` may give. Each provider
# registers its factory where it is defined, with
# :func:`evalkit.judges.providers.register_provider`. A factory takes
# ``(JudgeClientSpec, backends)`` and returns a judge client.
JUDGE_PROVIDERS: Registry[Callable[..., Any]] = Registry("judge provider", builtin_modules=(
    "evalkit.judges.providers",
))
"""Provider name -> client factory (typed loosely here: see the docstring)."""


# Model backends: the names a candidate's ``backend:`` may give. Each backend registers
# itself where it is defined, with :func:`evalkit.models.backend.register_backend` (each
# keeps torch and vLLM inside its functions, so importing its module costs little).
BackendFactory = Callable[[], Any]
"""Returns a new :class:`evalkit.models.backend.Backend` (typed loosely here: see the docstring)."""

BACKENDS: Registry[BackendFactory] = Registry("backend", builtin_modules=(
    "evalkit.models.hf",
    "evalkit.models.mock",
    "evalkit.models.openai_server",
    "evalkit.models.vllm",
))
"""Backend name -> factory (a class taking no arguments, or a function returning a backend)."""
