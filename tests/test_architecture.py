"""The package structure keeps its promises: no import circles, no overlong engine modules, no
modules that only re-export, and no Qt inside the engine — checked from the source with `ast`,
so a function-level import counts as much as one at the top of a file.

A new maintainer reads the tree to find their way (docs/ARCHITECTURE.md); these tests keep it
readable. The two allow-lists below name what other issue-9 branches are still fixing; they
may only shrink, and a test fails when an entry is no longer needed, so they never go stale.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

import clm_tray

PACKAGE = Path(clm_tray.__file__).resolve().parent
ROOT = PACKAGE.parent
CORE = PACKAGE / "core"
MAX_LINES = 330  # "no module over ~300 lines", with a little tolerance

# Engine modules still over MAX_LINES because their split belongs to another issue-9 branch
# (lines when this list was written). The lead removes an entry once that branch is merged;
# test_allow_lists_hold_only_what_is_still_needed says which.
STILL_TOO_LONG: dict[str, int] = {
}

# Import circles other issue-9 branches are removing: each strongly connected group of modules
# found must lie inside one of these. The lead empties this after merging those branches.
KNOWN_CYCLES: list[frozenset[str]] = [
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def _trees() -> dict[str, ast.Module]:
    """Every clm_tray module's syntax tree (parsed once per test session: nothing edits them)."""
    return {name: ast.parse(path.read_text(encoding="utf-8"), str(path))
            for name, path in _modules().items()}


def _imported_names(name: str, path: Path, tree: ast.Module) -> Iterator[str]:
    """Every dotted name a module imports, wherever the import statement is: module level,
    inside a function, or under ``if TYPE_CHECKING:`` (all of them are included: a circle a
    type checker or a late import walks is still a circle for the reader)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """clm_tray module -> the clm_tray modules it imports (never its own parent packages,
    which Python runs first anyway and which hold nothing)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, tree in _trees().items():
        deps = set()
        for imported in _imported_names(name, modules[name], tree):
            if imported in modules:
                deps.add(imported)
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def a_circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """One concrete circle inside a strongly connected group, for the failure message."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & group):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return sorted(group)  # pragma: no cover - a strongly connected group always has a circle


def test_no_module_imports_another_that_imports_it_back():
    graph = import_graph()
    unknown = [g for g in strongly_connected(graph)
               if not any(g <= known for known in KNOWN_CYCLES)]
    circles = ["\n  " + " -> ".join(a_circle(graph, g)) for g in unknown]
    assert not circles, "import circles (function-level imports count):" + "".join(circles)


def test_the_graph_sees_function_level_and_type_checking_imports():
    """The circle check is only as good as the graph: a late import and a TYPE_CHECKING one
    are edges too (the cycle imports the training module inside a function)."""
    graph = import_graph()
    assert "clm_tray.core.ml.trainprocess" in graph["clm_tray.core.app.cycle"]  # function-level
    assert "clm_tray.core.app.cycle_run" in graph["clm_tray.core.app.cycle"]  # module level
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from clm_tray.core import x\n"
        "def f():\n    from . import y\n")
    found = set(_imported_names("clm_tray.core.app.z", Path("z.py"), tree))
    assert {"clm_tray.core.x", "clm_tray.core.app.y"} <= found


def test_a_circle_is_found_and_shown_as_a_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (group,) = strongly_connected(graph)
    assert group == {"a", "b", "c"}
    assert a_circle(graph, group) == ["a", "b", "c", "a"]


def _core_lengths() -> dict[str, int]:
    return {str(p.relative_to(ROOT).as_posix()): len(p.read_text(encoding="utf-8").splitlines())
            for p in sorted(CORE.rglob("*.py"))}


def test_no_engine_module_is_longer_than_about_300_lines():
    too_long = {path: n for path, n in _core_lengths().items()
                if n > MAX_LINES and path not in STILL_TOO_LONG}
    assert not too_long, (f"split these by job into modules of at most {MAX_LINES} lines: "
                          f"{too_long}")


def test_allow_lists_hold_only_what_is_still_needed():
    """An entry that no longer applies is removed, so the lists shrink to nothing."""
    lengths = _core_lengths()
    fixed = [path for path in STILL_TOO_LONG if lengths.get(path, 0) <= MAX_LINES]
    assert not fixed, f"remove from STILL_TOO_LONG (now short enough or gone): {fixed}"
    groups = strongly_connected(import_graph())
    gone = [sorted(known) for known in KNOWN_CYCLES if not any(g <= known for g in groups)]
    assert not gone, f"remove from KNOWN_CYCLES (no circle left there): {gone}"


def _is_pure_reexport(tree: ast.Module) -> bool:
    """Only imports (and ``__all__``, a docstring): a module that hides where names live."""
    body = [n for n in tree.body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))
               and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]

    def is_all(n: ast.stmt) -> bool:
        targets = n.targets if isinstance(n, ast.Assign) else (
            [n.target] if isinstance(n, (ast.AnnAssign, ast.AugAssign)) else [])
        return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)

    return bool(imports) and all(
        isinstance(n, (ast.Import, ast.ImportFrom)) or is_all(n) for n in body)


def test_no_module_only_re_exports_names_from_elsewhere():
    shims = [name for name, tree in _trees().items() if _is_pure_reexport(tree)]
    assert not shims, f"import names from the module that defines them instead of: {shims}"


@pytest.mark.parametrize(("source", "shim"), [
    ('"""Shim."""\nfrom clm_tray.core.registry.deploy import Deployer\n__all__ = ["Deployer"]\n',
     True),
    ("from __future__ import annotations\nfrom a import b, c\n", True),
    ('"""A package."""\n', False),
    ("from a import b\n\n\ndef use():\n    return b()\n", False),
])
def test_a_re_export_module_is_recognised(source: str, shim: bool):
    assert _is_pure_reexport(ast.parse(source)) is shim


def test_no_engine_module_imports_qt_even_inside_a_function():
    """tests/core/test_settings.py proves every engine module *loads* without Qt; this one
    covers what loading cannot see: an import of Qt inside a function, run later."""
    modules = _modules()
    offenders = sorted(
        name for name, tree in _trees().items()
        if name.startswith("clm_tray.core") and any(
            imported.split(".")[0] in ("PySide6", "shiboken6")
            for imported in _imported_names(name, modules[name], tree)))
    assert not offenders, f"the engine must never import Qt: {offenders}"
