"""The layout rules docs/architecture.md states, checked: no import cycle, no oversized module, light leaves,
a top level of entry points only, few fragments.

Importing ``a.b.c`` runs package ``a.b``'s ``__init__`` first, so a module outside ``a.b``
that imports ``a.b.c`` depends on that ``__init__`` too: the graph counts that edge (an
``__init__`` that imported the importer back would be a cycle that works only by import order).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "evalkit"
MAX_LINES = 800  # past this a module holds more than one idea: split it by idea


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every evalkit module ``name`` imports, at any depth of the file (functions, TYPE_CHECKING too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                found |= _outer_packages(target, name, known)
    return found


def _outer_packages(target: str, importer: str, known: set[str]) -> set[str]:
    """The packages whose ``__init__`` importing ``target`` runs, less the importer's own packages."""
    parts = target.split(".")
    parents = {".".join(parts[:n]) for n in range(2, len(parts))}
    return {p for p in parents if p in known and p != importer and not importer.startswith(f"{p}.")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    modules = _modules()
    graph = {name: _imports(path, name, set(modules)) for name, path in modules.items()}
    # A package imports its own submodules through __init__; that edge is not a cycle.
    graph = {name: {t for t in targets if not t.startswith(f"{name}.")} for name, targets in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_checker_finds_a_cycle_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_importing_a_submodule_counts_its_package_init() -> None:
    known = {"evalkit", "evalkit.pkg", "evalkit.pkg.base", "evalkit.other"}
    assert _outer_packages("evalkit.pkg.base", "evalkit.other", known) == {"evalkit.pkg"}
    # A module inside the package runs its own __init__ anyway: no edge to it.
    assert _outer_packages("evalkit.pkg.base", "evalkit.pkg.run", known | {"evalkit.pkg.run"}) == set()


def test_no_module_over_800_lines() -> None:
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_loading_a_suite_and_the_run_codec_imports_no_numpy_pandas_or_torch() -> None:
    code = ("import sys, evalkit.suite.config, evalkit.record.results, "
            "evalkit.bars.verdict, evalkit.cli; "
            "print(sorted(m for m in ('numpy', 'pandas', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]", proc.stderr


# The shape docs/architecture.md describes (issue 27): one folder per capability, so the
# package's top level holds the entry points and the run flow only; fragments folded into
# the modules they serve (a reader pays for every file they open).
MAX_TOP_LEVEL_MODULES = 12
MAX_MODULES = 110  # package __init__ files included
MAX_FRAGMENTS = 5
FRAGMENT_LINES = 40  # lines of code, comments and blank lines not counted


def _code_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_the_top_level_holds_the_entry_points_and_the_run_flow_only() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_few_modules_in_all() -> None:
    assert len(_modules()) <= MAX_MODULES, sorted(_modules())


def test_few_fragments() -> None:
    fragments = sorted(name for name, path in _modules().items()
                       if path.name != "__init__.py" and _code_lines(path) < FRAGMENT_LINES)
    assert len(fragments) <= MAX_FRAGMENTS, fragments
