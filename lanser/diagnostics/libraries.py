"""Which installed libraries can reach a workspace module: a fact read from the environment.

The server resolves an import in *library* code the way it does in workspace
code, and the workspace's own roots come before the environment's search
paths: a library module that imports ``mypkg`` sees the workspace's ``mypkg``,
and a workspace file that uses that library can see a change to ``mypkg``
through it although it never names it.  The affected-files rule
(:mod:`lanser.diagnostics.affected`) must then pull the files importing such a
library whenever a workspace export changes.

Which libraries do that is read once per library name, at module level, from
the code the server would read: each module the workspace imports from
outside itself and the standard library is looked up in the analysed
interpreter's search paths (``sys.path``, as the server asks it; ``-stubs``
packages included) and in the third-party stubs bundled with the pinned
server; every import of every file found (anywhere in the file, relative ones
resolved in its package) is followed the same way, module by module.  A
library *reaches* the workspace when a module it loads this way imports a
name whose first part is a workspace top-level module.  Every candidate file
is followed (the server picks one of them; which does not matter here), so
the answer can only be too large, never too small.  The answer depends on the
machine, so a trace records it and a replay answers from the record.
"""

from __future__ import annotations

import ast
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

_SOURCES = (".pyi", ".py")
MAX_MODULES = 50_000  # modules followed per question; past it every library is said to reach


class Roots:
    """Search roots indexed by the top-level names they hold (one directory listing each)."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.by_top: dict[str, list[Path]] = {}
        for root in roots:
            try:
                entries = os.listdir(root)
            except OSError:
                continue
            for entry in entries:
                top = entry
                for suffix in (*_SOURCES, "-stubs"):
                    if top.endswith(suffix):
                        top = top[: -len(suffix)]
                        break
                bucket = self.by_top.setdefault(top, [])
                if not bucket or bucket[-1] != root:
                    bucket.append(root)

    def module_files(self, name: str) -> list[Path]:
        """Every file that may hold module ``name`` (dotted)."""
        parts = name.split(".")
        out: list[Path] = []
        for root in self.by_top.get(parts[0], ()):
            for top in (parts[0], f"{parts[0]}-stubs"):
                base = root.joinpath(top, *parts[1:])
                for cand in (*(base.with_name(base.name + s) for s in _SOURCES),
                             *(base / f"__init__{s}" for s in _SOURCES)):
                    if cand.is_file():
                        out.append(cand)
        return out


_FROM = re.compile(rb"^[ \t]*from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import[ \t]*(\([^)]*\)|[^\n#;]*)", re.M)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^\n#;]+)", re.M)
_NAME = re.compile(rb"[A-Za-z_][\w.]*")


@lru_cache(maxsize=65_536)
def _imports_of(path: Path, module: str, mtime: int) -> frozenset[str]:
    """Absolute dotted names a library file imports (relative imports resolved; for
    ``from m import x``, both ``m`` and ``m.x``, which may be a submodule), anywhere in it."""
    try:
        data = path.read_bytes()
    except OSError:
        return frozenset()
    package = module.split(".") if path.name.startswith("__init__.") else module.split(".")[:-1]
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _scanned_imports(data, package)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(node.level, node.module or "", package)
            if base is None:
                continue
            if base:
                out.add(base)
            out.update(f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*")
    return frozenset(out)


def _base(level: int, module: str, package: list[str]) -> str | None:
    """The absolute module a ``from`` import names (None: above the top package)."""
    if not level:
        return module
    if level - 1 > len(package):
        return None
    return ".".join(p for p in package[: len(package) - (level - 1)] + (module.split(".") if module else []) if p)


def _scanned_imports(data: bytes, package: list[str]) -> frozenset[str]:
    """The imports of a file Python cannot parse (old syntax), read from its text: a misread
    line can only add a name."""
    out: set[str] = set()
    for m in _IMPORT.finditer(data):
        for part in m.group(1).split(b","):
            name = _NAME.match(part.strip())
            if name:
                out.add(name.group(0).decode("ascii", "ignore"))
    for m in _FROM.finditer(data):
        name = _base(len(m.group(1)), m.group(2).decode("ascii", "ignore"), package)
        if name is None:
            continue
        if name:
            out.add(name)
        for item in _NAME.findall(m.group(3)):
            word = item.decode("ascii", "ignore")
            if word not in ("as", "import") and "." not in word:
                out.add(f"{name}.{word}" if name else word)
    return frozenset(out)


def _with_parents(name: str) -> list[str]:
    bits = name.split(".")
    return [".".join(bits[: i + 1]) for i in range(len(bits))]


def reaching_libraries(external: Iterable[str], workspace_tops: Iterable[str], stdlib: Iterable[str],
                       search_paths: Iterable[str], stubs: Path | None) -> frozenset[str]:
    """The top-level names in ``external`` (libraries the workspace imports) whose modules
    import a workspace top-level name, directly or through other library modules (the
    standard library is never followed: the server takes it from its typeshed)."""
    inside = set(workspace_tops)
    skip = set(stdlib)
    roots = [Path(p) for p in search_paths if p and os.path.isdir(p) and not p.endswith(".zip")]
    if stubs is not None and stubs.is_dir():
        roots += sorted(d for d in stubs.iterdir() if d.is_dir())
    index = Roots(roots)
    reaches: set[str] = set()
    for top in sorted(set(external) - inside - skip):
        seen: set[str] = set()
        todo = [top]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            if len(seen) > MAX_MODULES:
                reaches.add(top)
                break
            names: set[str] = set()
            for path in index.module_files(module):
                try:
                    names |= _imports_of(path, module, path.stat().st_mtime_ns)
                except OSError:
                    continue
            if any(n.split(".")[0] in inside for n in names):
                reaches.add(top)
                break
            todo.extend(sorted(p for n in names for p in _with_parents(n)
                               if p.split(".")[0] not in skip and p not in seen))
    return frozenset(reaches)


__all__ = ["Roots", "reaching_libraries"]
