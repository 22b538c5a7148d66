"""Which files the pinned server checks: pyright 1.1.407's own file-spec rules, in Python.

``pyright --outputjson`` reports exactly the files its source enumeration
finds (``SourceEnumerator``): every ``include`` entry (default: the project
root) walked depth-first in name order, a directory entered when its path
matches the include pattern (or the pattern has ``**``) and no ``exclude``
pattern matches it, a ``.py``/``.pyi`` file kept when the include pattern
matches and no exclude pattern does.  When the configuration sets no
``exclude``, pyright excludes ``**/node_modules``, ``**/__pycache__`` and
``**/.*`` and skips every directory that looks like a virtual environment
(``bin/activate``, ``Scripts/activate``, ``pyvenv.cfg``, ``conda-meta``).
Symlinked directories are followed once (by real path); broken links are
skipped.  An ``include`` entry naming a file takes that file.

The language server checks the same files, plus any document a client opens
(pyright checks open files whatever the configuration says) and, when its
diagnostics are pulled, a workspace file outside the configuration that a
checked file imports.  So "the diagnostics of the workspace" must never be
"every file the server answers for": it is the files enumerated here, and a
file opened only because a step edited it is left out unless it is one of
them.  Files created later are matched with the same patterns
(:meth:`FileSet.matches`, pyright's ``matchFileSpecs``), which is how the
server decides whether an opened new file is tracked.

Patterns are compiled exactly as pyright's ``getWildcardRegexPattern``:
``**`` matches any number of directories, ``*`` and ``?`` stay inside one path
component, anything else is literal; a pattern matches a path and everything
below it.  Matching is case-sensitive (Linux).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from typing import Iterable

from .config import PyrightConfig, Spec

DEFAULT_EXCLUDES = ("**/node_modules", "**/__pycache__", "**/.*")
ENV_MARKERS = (("bin", "activate"), ("Scripts", "activate"), ("pyvenv.cfg",), ("conda-meta",))
_INCLUDE_FILE = re.compile(r"\.pyi?$")
_SEP = r"\/"
_DOUBLE_STAR = f"({_SEP}[^{_SEP}][^{_SEP}]*)*?"
_RESERVED = re.compile(r"[^\w\s/]", re.ASCII)
_WILDCARD = re.compile(r"[*?]")


@dataclass(frozen=True)
class FileSpec:
    """A compiled ``include``/``exclude`` entry (pyright's ``FileSpec``)."""

    wildcard_root: str
    regex: re.Pattern[str]
    has_directory_wildcard: bool


def _components(path: str) -> list[str]:
    """Path components after normalizing (``..`` and ``.`` resolved), the root first as ``""``."""
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return [""] + [c for c in norm.split("/") if c] if norm.startswith("/") else [c for c in norm.split("/") if c]


def _escape(component: str) -> str:
    def sub(m: re.Match[str]) -> str:
        ch = m.group(0)
        if ch == "*":
            return f"[^{_SEP}]*"
        if ch == "?":
            return f"[^{_SEP}]"
        return "\\" + ch

    return _RESERVED.sub(sub, component)


def file_spec(base: str, pattern: str) -> FileSpec:
    """Compile ``pattern`` (relative to the absolute directory ``base``) as pyright does."""
    absolute = pattern if pattern.startswith("/") else posixpath.join(base, pattern)
    parts = _components(absolute)
    regex = ""
    first = True
    for comp in parts:
        if comp == "**":
            regex += _DOUBLE_STAR
            continue
        if not first:
            comp = "/" + comp
        regex += _escape(comp)
        first = False
    root = "/"
    for comp in parts[1:]:
        if comp == "**" or _WILDCARD.search(comp):
            break
        root = posixpath.join(root, comp)
    has_dir_wildcard = "**" in _components(pattern)
    return FileSpec(root, re.compile(f"^({regex})($|{_SEP})"), has_dir_wildcard)


def _in_path(path: str, excludes: Iterable[FileSpec]) -> bool:
    return any(spec.regex.search(path) for spec in excludes)


def _compile(specs: Iterable[Spec]) -> tuple[FileSpec, ...]:
    return tuple(file_spec(s.base, s.pattern) for s in specs)


class FileSet:
    """The configuration's file specs, compiled: enumerate the checked files, match new ones."""

    def __init__(self, config: PyrightConfig) -> None:
        self.config = config
        self.root = config.root
        self.include = _compile(config.include) or (file_spec(self.root, "."),)
        if config.exclude:
            self.exclude = _compile(config.exclude)
            self.auto_exclude_venv = False
        else:
            self.exclude = tuple(file_spec(self.root, p) for p in DEFAULT_EXCLUDES)
            self.auto_exclude_venv = True
        self.ignore = _compile(config.ignore)

    # -- the absolute paths pyright works with ---------------------------------------------------
    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, rel)

    def _rel(self, path: str) -> str | None:
        if path == self.root:
            return ""
        prefix = self.root.rstrip("/") + "/"
        return path[len(prefix):] if path.startswith(prefix) else None

    # -- pyright's matchFileSpecs: is a (new) file tracked? ----------------------------------------
    def matches(self, rel: str) -> bool:
        """Whether the server tracks the workspace file ``rel`` (for files that appear later:
        the server asks the same of a newly opened document)."""
        path = self._abs(rel)
        if not _INCLUDE_FILE.search(path) or _in_path(path, self.exclude):
            return False
        return any(spec.regex.search(path) for spec in self.include)

    def ignored(self, rel: str) -> bool:
        """Whether ``ignore`` suppresses every diagnostic of ``rel`` (the server reports none)."""
        return _in_path(self._abs(rel), self.ignore)

    # -- pyright's SourceEnumerator ------------------------------------------------------------------
    def enumerate(self) -> list[str]:
        """Every file the server checks, workspace-relative, in the order pyright finds (and
        the CLI checks) them: each directory's files by name, then its subdirectories (files
        outside the workspace that an include reaches through a symlink are left out)."""
        found: dict[str, None] = {}
        for spec in self.include:
            if _in_path(spec.wildcard_root, self.exclude):
                continue
            try:
                st = os.stat(spec.wildcard_root)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[spec.wildcard_root] = None
            elif stat.S_ISDIR(st.st_mode):
                self._walk(spec, found)
        return list(dict.fromkeys(rel for rel in (self._rel(p) for p in found) if rel))

    def _walk(self, spec: FileSpec, found: dict[str, None]) -> None:
        seen: set[str] = set()
        todo = [spec.wildcard_root]
        while todo:
            directory = todo.pop()
            try:
                real = os.path.realpath(directory, strict=True)
            except OSError:
                continue  # a broken link
            if real in seen:
                continue
            seen.add(real)
            if self.auto_exclude_venv and any(os.path.exists(os.path.join(directory, *m)) for m in ENV_MARKERS):
                continue
            files, dirs = _entries(directory)
            for path in files:
                if spec.regex.search(path) and not _in_path(path, self.exclude) and _INCLUDE_FILE.search(path):
                    found[path] = None
            for path in reversed(dirs):
                if (spec.regex.search(path) or spec.has_directory_wildcard) and not _in_path(path, self.exclude):
                    todo.append(path)


def _entries(directory: str) -> tuple[list[str], list[str]]:
    """(files, directories) of ``directory``, sorted by name, links followed (pyright's
    ``getFileSystemEntries``)."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return [], []
    files: list[str] = []
    dirs: list[str] = []
    for e in entries:
        path = posixpath.join(directory, e.name)
        try:
            if e.is_file(follow_symlinks=False):
                files.append(path)
            elif e.is_dir(follow_symlinks=False):
                dirs.append(path)
            elif e.is_symlink():
                st = os.stat(path)
                (files if stat.S_ISREG(st.st_mode) else dirs if stat.S_ISDIR(st.st_mode) else []).append(path)
        except OSError:
            continue
    return files, dirs


__all__ = ["DEFAULT_EXCLUDES", "ENV_MARKERS", "FileSet", "FileSpec", "file_spec"]
