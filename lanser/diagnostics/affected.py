"""Which files' diagnostics can change when a step changes some files (the "affected files" rule).

The reward runner pulls diagnostics after every step.  With pull diagnostics
the server checks exactly the files it is asked about, so asking only for the
files whose diagnostics *can* have changed, and reusing the previous step's
answers for the rest, gives the same counts for less work.  This module
decides that set from the files' texts alone (pure: texts in, paths out);
the runner and diagnostics/stdlib.py do the I/O, diagnostics/interface.py says what
each module shows other files.

A file's diagnostics depend only on its own text, the configuration and what
it imports.  So after a step, affected (pulled) are:

1. every changed or created Python file;
2. for a changed module, its changed *exports*: the module-level names whose
   binding statements changed, or use a changed name outside a sealed
   function body (diagnostics/interface.py: a body other files never see, e.g.
   of a function with a return annotation).  Every importer that mentions a
   changed export anywhere (or uses the module object itself) is affected;
   an importer's own exports change through its statements that mention one
   (``from .m import f`` re-exports ``f``), and so on, importer by importer.
   A change inside sealed bodies alone affects no other file;
3. for a created or deleted module, every file whose imports name it (an
   unresolved import that now resolves, a ``.pyi`` beside a ``.py``, a new
   ``__init__.py``) or a directory that appeared or vanished with it (a
   namespace package), and everything importing those, module by module.

Who imports what is matched by module name: ``import a.b`` names ``a`` and
``a.b``; ``from a.b import c`` names ``a.b`` and ``a.b.c`` (not the package
above: the server reads only the module named, and records only that one
as imported); a relative import names the dotted path from the workspace
root (``from .m import x`` in ``pkg/n.py`` names ``pkg.m`` and ``pkg.m.x``);
``from a import *`` names every submodule of ``a`` and re-exports whatever
changed.  A file's module name is taken from every suffix of its path
(``src/pkg/m.py`` is ``m``, ``pkg.m`` and ``src.pkg.m``), so every search
root is covered: the workspace, ``src``, ``extraPaths``, ``typings``, and
the importing file's own directory (the server's last resort for an import
found nowhere else).  A suffix that starts inside a regular package and whose
first part is a standard-library module is left out: the server takes the
standard library from its typeshed before it ever looks there.

When the rule cannot be sure it answers ``None`` (pull everything): a
changed configuration file (``pyrightconfig.json``, ``pyproject.toml``, any
``.json``/``.toml`` a configuration may extend, ``py.typed``, ``.pth``), a
native module, a Python file outside the checked set, a workspace
``__builtins__.pyi`` (imported by every file), a root ``__init__.py``.  A
file that does not parse (with this Python's ``ast``) has unknown imports and
exports: any export change affects it and everything importing it.  Library
code outside the workspace may itself import a workspace module (the server
resolves the workspace first, for library files too): when any export
changes, every file importing a library whose code reaches a workspace module
(:mod:`lanser.diagnostics.libraries`, a fact read once from the environment
and recorded in traces) is affected too, with all its exports; when that fact
is unknown, every file importing anything from outside the workspace other
than the standard library is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterable, Mapping

from .interface import (
    ALL_EXPORTS,
    Interface,
    changed_exports,
    exports_using,
    import_statements,
    interface_of,
    parse_interface,
    star_visible,
)

PY_SUFFIXES = (".py", ".pyi")
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
CONFIG_NAMES = frozenset({"pyrightconfig.json", "pyproject.toml", "py.typed"})
CONFIG_SUFFIXES = (".json", ".toml", ".pth")
# Resolved for every file before anything else (a workspace file of that name wins).
IMPLICIT_MODULES = frozenset({"__builtins__"})

CHANGED, CREATED, DELETED = "changed", "created", "deleted"


@dataclass(frozen=True)
class FileImports:
    """What one file imports, as dotted names with their parents."""

    modules: frozenset[str] = frozenset()         # absolute imports
    relative: frozenset[str] = frozenset()        # relative imports, as paths from the root
    wildcards: frozenset[str] = frozenset()       # ``from X import *`` (absolute X)
    relative_wildcards: frozenset[str] = frozenset()
    absolute_tops: frozenset[str] = frozenset()   # first parts of the absolute imports


def _strip_py(name: str) -> str:
    for suffix in PY_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def module_parts(rel: str) -> list[str]:
    """Dotted-name parts of a path: ``pkg/__init__.py`` is ``pkg``; a non-Python file
    stands for its directory."""
    parts = rel.split("/")
    if not rel.endswith(PY_SUFFIXES):
        return parts[:-1]
    parts[-1] = _strip_py(parts[-1])
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def module_names(rel: str) -> frozenset[str]:
    """Every dotted name the file at ``rel`` could be imported as: one per path suffix
    (plus the name without ``-stubs`` for a stub package directory)."""
    return frozenset(name for _, name in _suffix_names(module_parts(rel)))


def _suffix_names(parts: list[str]) -> list[tuple[int, str]]:
    """(index of the first part, dotted name) for every suffix of ``parts``."""
    out = []
    for i in range(len(parts)):
        tail = parts[i:]
        out.append((i, ".".join(tail)))
        if tail[0].endswith("-stubs") and len(tail[0]) > len("-stubs"):
            out.append((i, ".".join([tail[0][: -len("-stubs")], *tail[1:]])))
    return out


def _with_parents(name: str) -> list[str]:
    bits = name.split(".")
    return [".".join(bits[: i + 1]) for i in range(len(bits))]


_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def parse_imports(rel: str, text: str) -> FileImports | None:
    """The imports of one file: every ``import`` statement anywhere in it (conditional, in a
    function, under ``TYPE_CHECKING``); None when it does not parse."""
    try:
        return imports_of(rel, ast.parse(text, filename=rel))
    except _PARSE_ERRORS:
        return None


def analyze(rel: str, text: str) -> tuple[FileImports | None, Interface | None]:
    """A file's imports and interface from one parse (None: unknown, it did not parse)."""
    try:
        tree = ast.parse(text, filename=rel, type_comments=True)
    except _PARSE_ERRORS:
        return parse_imports(rel, text), None  # e.g. a misplaced type comment
    statements = import_statements(tree)
    try:
        return imports_of(rel, tree, statements), interface_of(rel, text, tree, statements)
    except RecursionError:
        return imports_of(rel, tree, statements), None


def imports_of(rel: str, tree: ast.Module, statements: list[ast.Import | ast.ImportFrom] | None = None) -> FileImports:
    """The imports in a parsed file (see :func:`parse_imports`; ``statements``: its import
    statements, if already found)."""
    here = rel.split("/")[:-1]  # the directory a relative import starts from
    modules: set[str] = set()
    relative: set[str] = set()
    wildcards: set[str] = set()
    relative_wildcards: set[str] = set()
    tops: set[str] = set()
    for node in statements if statements is not None else import_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.update(_with_parents(alias.name))
                tops.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(here):
                    continue  # above the workspace root: never a workspace file
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                names, wild = relative, relative_wildcards
            else:
                base = (node.module or "").split(".")
                names, wild = modules, wildcards
                tops.add(base[0])
            name = ".".join(base)
            if name:
                names.add(name)  # not the packages above it: only the named module is read
            for alias in node.names:
                if alias.name == "*":
                    if name:
                        wild.add(name)
                else:
                    names.add(f"{name}.{alias.name}" if name else alias.name)
    return FileImports(frozenset(modules), frozenset(relative), frozenset(wildcards),
                       frozenset(relative_wildcards), frozenset(tops))


def _dirs_of(rel: str) -> list[str]:
    """Every directory above ``rel`` inside the workspace, deepest first (not the root)."""
    bits = rel.split("/")[:-1]
    return ["/".join(bits[:i]) for i in range(len(bits), 0, -1)]


class ImportGraph:
    """The checked files' imports (None = unknown: the file did not parse), indexed by name.

    ``stdlib``: top-level modules the server always takes from its typeshed."""

    def __init__(self, imports: Mapping[str, FileImports | None], stdlib: frozenset[str] = frozenset()) -> None:
        self.imports = dict(imports)
        self.stdlib = stdlib
        self.unknown = frozenset(r for r, i in self.imports.items() if i is None)
        self._by_name: dict[str, set[str]] = {}
        self._by_path: dict[str, set[str]] = {}
        self._wild: list[tuple[str, str]] = []
        self._rel_wild: list[tuple[str, str]] = []
        self._dir_files: dict[str, int] = {}
        for rel, imp in self.imports.items():
            for d in _dirs_of(rel):
                self._dir_files[d] = self._dir_files.get(d, 0) + 1
            if imp is None:
                continue
            for name in imp.modules:
                self._by_name.setdefault(name, set()).add(rel)
            for name in imp.relative:
                self._by_path.setdefault(name, set()).add(rel)
            self._wild.extend((w, rel) for w in imp.wildcards)
            self._rel_wild.extend((w, rel) for w in imp.relative_wildcards)
        self._package_dirs = frozenset(rel.rsplit("/", 1)[0] if "/" in rel else "" for rel in self.imports
                                       if rel.rsplit("/", 1)[-1] in ("__init__.py", "__init__.pyi"))
        self.top_names = frozenset(t for r in self.imports for t in self.rootable_tops(r))

    # -- names -------------------------------------------------------------------
    def _rootable(self, rel: str, index: int) -> bool:
        """Is the directory holding the ``index``-th part of ``rel`` possibly a search root
        (not itself a regular package)?"""
        return "/".join(rel.split("/")[:index]) not in self._package_dirs

    def rootable_tops(self, rel: str) -> frozenset[str]:
        """First parts of ``rel``'s names as imported from a possible search root."""
        parts = module_parts(rel)
        return frozenset(parts[i] for i in range(len(parts)) if self._rootable(rel, i))

    def _absolute_names(self, rel: str) -> set[str]:
        out = set()
        for i, name in _suffix_names(module_parts(rel)):
            if name.split(".")[0] in self.stdlib and not self._rootable(rel, i):
                continue  # the standard library wins before the importing directory is tried
            out.add(name)
        return out

    def root_tops(self, roots: Iterable[str] = ("", "src")) -> frozenset[str]:
        """First parts of the module names importable from the workspace's import roots
        (library code resolves ``import x`` there, never in a workspace file's own directory)."""
        out = set()
        for rel in self.imports:
            for root in roots:
                prefix = root + "/" if root else ""
                if rel.startswith(prefix):
                    parts = module_parts(rel[len(prefix):])
                    if parts:
                        out.add(parts[0])
        return frozenset(out)

    def external_tops(self) -> frozenset[str]:
        """Top-level names imported from outside the workspace and the standard library."""
        inside = self.top_names | self.stdlib | {""}
        return frozenset(t for i in self.imports.values() if i is not None for t in i.absolute_tops
                         if t not in inside)

    def external_importers(self, libraries: frozenset[str] | None = None) -> frozenset[str]:
        """Files importing a library that may in turn import a workspace module: one of
        ``libraries`` (None: any name from outside the workspace and the standard library)."""
        inside = self.top_names | self.stdlib | {""}
        return frozenset(r for r, i in self.imports.items()
                         if i is not None and any(t not in inside and (libraries is None or t in libraries)
                                                  for t in i.absolute_tops))

    def has_files_under(self, directory: str, besides: str) -> bool:
        count = self._dir_files.get(directory, 0)
        if besides in self.imports and besides.startswith(directory + "/"):
            count -= 1
        return count > 0

    # -- who imports what ------------------------------------------------------------
    def _all_names(self, rel: str) -> set[str]:
        return self._absolute_names(rel) | {".".join(module_parts(rel))}

    def wildcard_importer(self, importer: str, module: str) -> bool:
        """Whether ``importer`` does ``from <module or a package above it> import *`` (the
        server binds a package's submodules too)."""
        return self.wildcard(importer, module) is not None

    def wildcard(self, importer: str, module: str) -> str | None:
        """``"module"`` when ``importer`` does ``from <module> import *``, ``"package"`` when
        it does so of a package above ``module`` only, None when neither."""
        imp = self.imports.get(importer)
        if imp is None or not (imp.wildcards or imp.relative_wildcards):
            return None
        names = self._absolute_names(module)
        path = ".".join(module_parts(module))
        if names & imp.wildcards or path in imp.relative_wildcards:
            return "module"
        if (any(n.startswith(w + ".") for w in imp.wildcards for n in names)
                or any(path.startswith(w + ".") for w in imp.relative_wildcards)):
            return "package"
        return None

    def module_bindings(self, importer: str, module: str, iface: Interface) -> frozenset[str]:
        """Names ``importer`` binds to ``module`` as a module object (``import a.b``,
        ``from . import m``): through them every export of the module is reachable."""
        names = self._all_names(module)
        return frozenset(b for b, mod in iface.bindings if mod in names)

    def importers(self, rel: str) -> set[str]:
        """Files whose imports name the module at ``rel`` (a file, or a directory's package)."""
        names = self._absolute_names(rel)
        path = ".".join(module_parts(rel))
        out: set[str] = set(self._by_path.get(path, ()))
        for name in names:
            out |= self._by_name.get(name, set())
        for wild, who in self._wild:
            if any(n.startswith(wild + ".") for n in names):
                out.add(who)
        for wild, who in self._rel_wild:
            if path.startswith(wild + "."):
                out.add(who)
        out.discard(rel)
        return out


# -- the rule ------------------------------------------------------------------------------

def change_stays_inside(before: str, after: str, rel: str = "m.py") -> bool:
    """Whether going from ``before`` to ``after`` changes no name other files can see
    (diagnostics/interface.py: only sealed function bodies, comments, blank lines, docstrings)."""
    old, new = parse_interface(rel, before), parse_interface(rel, after)
    return old is not None and new is not None and changed_exports(old, new) == frozenset()


class _Propagation:
    """Affected files and, per file, its changed exports (None: all of them), spread from
    module to importer until nothing grows."""

    def __init__(self, graph: ImportGraph, interfaces: Mapping[str, Interface | None],
                 same_type: Mapping[str, frozenset[str]] | None = None) -> None:
        self.graph = graph
        self.interfaces = interfaces
        self.same_type = same_type or {}
        self.pulled: set[str] = set()
        self.exports: dict[str, frozenset[str] | None] = {}
        self.todo: list[str] = []

    def pull(self, rel: str) -> None:
        if rel in self.graph.imports:
            self.pulled.add(rel)

    def exported(self, rel: str, names: frozenset[str] | None) -> None:
        """``rel``'s exports ``names`` changed (None: all)."""
        if names is not None and not names:
            return
        old = self.exports.get(rel, frozenset())
        if old is None:
            return
        new = None if names is None else old | names
        if new != old or rel not in self.exports:
            self.exports[rel] = new
            self.todo.append(rel)

    def everything_from(self, rel: str) -> None:
        self.pull(rel)
        self.exported(rel, ALL_EXPORTS)

    def run(self) -> None:
        while self.todo:
            module = self.todo.pop()
            names = self.exports[module]
            for importer in sorted(self.graph.importers(module)):
                self._reach(module, names, importer)

    def _reach(self, module: str, names: frozenset[str] | None, importer: str) -> None:
        iface = self.interfaces.get(importer)
        if names is None or iface is None:
            self.everything_from(importer)
            return
        starred = frozenset[str]()
        wildcard = self.graph.wildcard(importer, module)
        if wildcard is not None:
            # ``from module import *`` binds (and re-exports) the changed names it shows; one
            # of a package above binds its submodules too: anything may come through.
            seen = star_visible(self.interfaces.get(module), names) if wildcard == "module" else None
            if seen is None:
                self.everything_from(importer)
                return
            self.pull(importer)
            starred = seen
        # Module objects bound to it: through ``m.name`` a statement reaches only the names it
        # mentions; a module object used bare (``x = m``, ``f(m)``) may reach any.
        own = self.graph.module_bindings(importer, module, iface) & iface.bare
        if iface.identifiers & names or own:
            self.pull(importer)
        using = exports_using(iface, names | own, self.same_type.get(importer, frozenset()))
        self.exported(importer, None if using is None else using | starred)


def affected_files(graph: ImportGraph, changes: Mapping[str, str], *,
                   previous_files: Iterable[str] = (),
                   interfaces: Mapping[str, Interface | None] | None = None,
                   before: Mapping[str, Interface | None] | None = None,
                   same_type: Mapping[str, frozenset[str]] | None = None,
                   libraries: frozenset[str] | None = None,
                   members: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """The files of ``graph`` (the state after the step) whose diagnostics can differ after
    ``changes`` (path -> created|changed|deleted); None when unsure (pull them all).

    ``previous_files``: the files checked before the step.  ``interfaces``: every file's
    interface now, ``before``: each changed file's interface before the step (missing or
    None: unknown, so every export of it may have changed; without them the rule works
    module by module, as if every export changed).  ``same_type``: per file, the names the
    server confirmed kept their type (a changed file's own changed names, or an importer's
    names bound by statements that use a changed name).  ``libraries``: the imported
    libraries whose code reaches a workspace module (None: unknown, any library may).
    ``members``: names of class members whose type changed (diagnostics/members.py): any file
    may reach a member through an object, so every file mentioning one is affected."""
    interfaces = interfaces if interfaces is not None else {}
    before = before if before is not None else {}
    known = set(graph.imports) | set(previous_files)
    spread = _Propagation(graph, interfaces, same_type)
    exported_change = False
    for rel, kind in sorted(changes.items()):
        name = rel.rsplit("/", 1)[-1]
        if name in CONFIG_NAMES or rel.endswith(CONFIG_SUFFIXES + NATIVE_SUFFIXES):
            return None
        is_python = rel.endswith(PY_SUFFIXES)
        if is_python:
            names = module_names(rel)
            if not names or names & IMPLICIT_MODULES:
                return None  # a root __init__.py, a workspace __builtins__.pyi
            if kind == CREATED and rel not in graph.imports:
                return None  # created where the server does not look
            if kind != CREATED and rel not in known:
                return None  # changed outside the checked set
            if kind == CHANGED:
                spread.pull(rel)
                old, new = before.get(rel), interfaces.get(rel)
                changed = (changed_exports(old, new, (same_type or {}).get(rel, frozenset()))
                           if old is not None and new is not None else ALL_EXPORTS)
                exported_change = exported_change or changed != frozenset()
                spread.exported(rel, changed)
                continue
            exported_change = True
            spread.everything_from(rel)  # created (a deleted one is not in the graph: no-op)
            for importer in graph.importers(rel):  # its module appeared or vanished
                spread.everything_from(importer)
        elif kind == CHANGED:
            continue  # a data file's contents never reach a diagnostic
        if kind != CHANGED:
            for d in _dirs_of(rel):
                if graph.has_files_under(d, besides=rel):
                    break
                for importer in graph.importers(d + "/__init__.py"):  # the directory appeared or vanished
                    exported_change = True
                    spread.everything_from(importer)
    if members:
        exported_change = True
        for rel in sorted(graph.imports):
            iface = interfaces.get(rel)
            if iface is None:
                spread.everything_from(rel)
            elif iface.identifiers & members:
                spread.pull(rel)
                spread.exported(rel, exports_using(iface, members, (same_type or {}).get(rel, frozenset())))
    if exported_change:
        for rel in sorted(graph.unknown | graph.external_importers(libraries)):
            spread.everything_from(rel)  # unknown imports; library code may import a changed module
    spread.run()
    return frozenset(spread.pulled)


__all__ = ["CHANGED", "CREATED", "DELETED", "FileImports", "ImportGraph", "affected_files", "analyze",
           "change_stays_inside", "imports_of", "module_names", "module_parts", "parse_imports"]
