"""The module map: which workspace file a dotted module name means.

Rules (what ``python -c 'import pkg.mod'`` would find with the usual roots on
``sys.path``):

- A file's *primary* module name is its path below the nearest ancestor
  directory that is not a package (has no ``__init__.py``/``__init__.pyi``).
  ``src/pkg/sub/mod.py`` with ``src/pkg/__init__.py`` and
  ``src/pkg/sub/__init__.py`` is ``pkg.sub.mod``; ``pkg/__init__.py`` is
  ``pkg``; a top-level ``plain.py`` is ``plain``; ``tools/x.py`` (no
  ``__init__.py``) is ``x``.
- Every file also has an *alias*: its full path from the workspace root as a
  dotted name, with a leading ``src.`` dropped (``tools.x``, ``tests.test_a``:
  PEP 420 namespace packages).  Aliases are consulted only when no primary
  name matches.
- When ``mod.py`` and ``mod.pyi`` both exist, the ``.py`` file is the module
  (source navigation); several distinct files with the same name are all
  returned and the caller ranks them.

The walk skips lanser.workspace.SKIP_DIRS, does not follow directory
symlinks, and keeps a file symlink only when its target is inside the
workspace.  The map is cached per Workspace instance and rebuilt when the
modification time of any walked directory changes (adding, removing or
renaming a file or a directory changes its parent's mtime).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from ..workspace import SKIP_DIRS, Workspace

_INIT = ("__init__.py", "__init__.pyi")


@dataclass
class ModuleMap:
    by_path: dict[str, str] = field(default_factory=dict)           # rel -> primary module name
    primary: dict[str, list[str]] = field(default_factory=dict)     # module -> rels
    alias: dict[str, list[str]] = field(default_factory=dict)       # alias module -> rels

    def files_for(self, module: str) -> list[str]:
        """Files a module name means (sorted; ``.py`` preferred over a ``.pyi`` twin)."""
        rels = self.primary.get(module) or self.alias.get(module) or []
        return _prefer_py(rels)

    def similar(self, module: str) -> list[str]:
        """Files of modules whose last component equals ``module``'s (for fuzzy ranking)."""
        last = module.rsplit(".", 1)[-1]
        out = [rel for rel, name in self.by_path.items()
               if name.rsplit(".", 1)[-1] == last and name != module]
        return _prefer_py(sorted(out))

    def all_files(self) -> list[str]:
        return _prefer_py(sorted(self.by_path))


def _prefer_py(rels: list[str]) -> list[str]:
    have = set(rels)
    return sorted(r for r in rels if not (r.endswith(".pyi") and r[:-1] in have))


def _stem_parts(rel: str) -> list[str]:
    parts = rel.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    parts = parts[:-1] + ([] if stem == "__init__" else [stem])
    return parts


def module_names(rel: str, package_dirs: set[str]) -> tuple[str, str]:
    """(primary, alias) module names of ``rel`` given the set of package dirs (rel paths)."""
    parts = rel.split("/")
    dirs = parts[:-1]
    root = len(dirs)
    while root > 0 and "/".join(dirs[:root]) in package_dirs:
        root -= 1
    names = _stem_parts(rel)
    primary = ".".join(names[root:])
    alias_parts = names[1:] if names and names[0] == "src" else names
    return primary, ".".join(alias_parts)


def module_name_for(ws: Workspace, rel: str) -> str:
    """Primary module name of one file, checking only its ancestor directories (no walk)."""
    parts = rel.split("/")
    pkg: set[str] = set()
    for i in range(len(parts) - 1, 0, -1):
        d = "/".join(parts[:i])
        if any((ws.root / d / n).is_file() for n in _INIT):
            pkg.add(d)
        else:
            break
    return module_names(rel, pkg)[0]


@dataclass
class _Cached:
    dir_mtimes: dict[str, int]
    mmap: ModuleMap


_CACHE: "weakref.WeakKeyDictionary[Workspace, _Cached]" = weakref.WeakKeyDictionary()


def _still_valid(ws: Workspace, cached: _Cached) -> bool:
    for d, mtime in cached.dir_mtimes.items():
        try:
            if os.stat(ws.root / d if d else ws.root).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def module_map(ws: Workspace) -> ModuleMap:
    """The workspace's module map (cached on ``ws``, see the module docstring)."""
    cached = _CACHE.get(ws)
    if cached is not None and _still_valid(ws, cached):
        return cached.mmap
    dir_mtimes, files, package_dirs = _walk(ws)
    mmap = ModuleMap()
    for rel in files:
        primary, alias = module_names(rel, package_dirs)
        if not primary:
            continue
        mmap.by_path[rel] = primary
        mmap.primary.setdefault(primary, []).append(rel)
        if alias and alias != primary:
            mmap.alias.setdefault(alias, []).append(rel)
    _CACHE[ws] = _Cached(dir_mtimes, mmap)
    return mmap


def _walk(ws: Workspace) -> tuple[dict[str, int], list[str], set[str]]:
    root = ws.root
    dir_mtimes: dict[str, int] = {}
    files: list[str] = []
    package_dirs: set[str] = set()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        full = root / rel_dir if rel_dir else root
        try:
            dir_mtimes[rel_dir] = os.stat(full).st_mtime_ns
            entries = list(os.scandir(full))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name not in SKIP_DIRS and not name.endswith(".egg-info"):
                        stack.append(rel)
                    continue
                if not name.endswith((".py", ".pyi")) or not entry.is_file():
                    continue
            except OSError:
                continue
            if entry.is_symlink() and not ws.contains(Path(os.path.realpath(entry.path))):
                continue
            files.append(rel)
            if name in _INIT:
                package_dirs.add(rel_dir)
    return dir_mtimes, sorted(files), package_dirs
