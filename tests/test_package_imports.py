"""The shape of the package: dependencies inside ``lanser/`` point one way (no import cycle),
and no module imports another module's private (``_name``) names.

The import graph is read with ``ast`` from the sources: an edge for every ``import`` and
``from ... import`` of a ``lanser`` module, at module level **and inside functions** (a
late import is still a dependency, and a cycle through one only waits for the right call
order to bite).  ``from pkg import name`` counts as an import of ``pkg.name`` when that is a
module.  Two things are left out, on purpose:

- imports under ``if TYPE_CHECKING:``: they never run, and they are how a module names, in
  an annotation, a type from a module that depends on it (``engine.context`` names
  ``Engine``; ``edits.checks`` names ``EditPlan``);
- the implicit import of a package's ``__init__`` when one of its modules is imported: a
  package that re-exports its modules would otherwise be a cycle with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lanser"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, is_pkg: bool, modules: dict[str, tuple[Path, bool]]
             ) -> tuple[set[str], list[str]]:
    """(lanser modules ``name`` imports, private names it imports from other modules)."""
    edges: set[str] = set()
    private: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                edges.update(a.name for a in child.names if a.name.split(".")[0] == "lanser")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] != "lanser":
                    continue
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name}:{child.lineno}: from {target} import {alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return {e for e in edges if e in modules and e != name}, private


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    private: list[str] = []
    for name, (path, is_pkg) in sorted(modules.items()):
        graph[name], found = _imports(name, path, is_pkg, modules)
        private += found
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    graph, _ = _graph()
    assert "lanser.engine.core" in graph["lanser.engine"]
    assert "lanser.engine.planner" in graph["lanser.rewards.runner"]
    assert "lanser.trace.replay" in graph["lanser.commands.trace"]  # an import inside a function


def test_no_import_cycle_inside_lanser() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_private_name_of_another() -> None:
    _, private = _graph()
    assert private == []
