"""In-memory steps: an overlay over a private mirror of the workspace, never the checkout itself.

``--in-memory`` (and every trainer-facing scorer) must never write the user's
checkout, yet the server has to see a module a step *creates* as a file: it
resolves imports on disk only (an open document that exists nowhere on disk is
never found by ``import``), so an agent that adds a module and imports it
would be scored against "import could not be resolved".  The server therefore
runs on a :class:`Mirror`: a private directory holding the workspace's tree,
hard-linked file by file where the file system allows (copied otherwise; the
links are never written through).  A step's *changed* files exist only as
document versions in the server and as bytes in the overlay; *created* files
are written into the mirror as new files; *deleted* ones are unlinked from
it.  Restoring puts the mirror back.  Paths in bundles are relative, so a run
on the mirror hashes the same as a run on the checkout.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import weakref
from pathlib import Path

from ..errors import LsCrash, NotFound
from ..workspace import SourceFile, Workspace, decode_source

# Never mirrored: version-control data and Lanser's own state; nothing the server reads.
MIRROR_SKIP = frozenset({".git", ".hg", ".svn", ".lanser"})


class Mirror:
    """A private copy of ``source``'s tree (see the module docstring), removed on :meth:`close`
    (or when the process exits)."""

    def __init__(self, source: Path) -> None:
        self.source = Path(os.path.realpath(source))
        self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="lanser-mirror-")))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.dir), True)
        try:
            self._copy_tree()
        except OSError as exc:
            self.close()
            raise LsCrash(f"cannot mirror the workspace for an in-memory run: {exc.strerror or exc}") from None

    def _copy_tree(self) -> None:
        src = str(self.source)
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d not in MIRROR_SKIP)
            rel_dir = os.path.relpath(dirpath, src)
            target_dir = self.dir if rel_dir == "." else self.dir / rel_dir
            for d in list(dirnames):
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    dirnames.remove(d)
                    self._link(full, target_dir / d)
                else:
                    (target_dir / d).mkdir(exist_ok=True)
            for f in filenames:
                full = os.path.join(dirpath, f)
                if os.path.islink(full):
                    self._link(full, target_dir / f)
                    continue
                try:
                    os.link(full, target_dir / f)
                except OSError:
                    shutil.copy2(full, target_dir / f)

    def _link(self, original: str, target: Path) -> None:
        """A symlink stays a symlink; one into the workspace points into the mirror instead."""
        dest = os.readlink(original)
        resolved = os.path.realpath(os.path.join(os.path.dirname(original), dest))
        if resolved == str(self.source) or resolved.startswith(str(self.source) + os.sep):
            dest = os.path.relpath(self.dir / os.path.relpath(resolved, self.source), target.parent)
        os.symlink(dest, target)

    def write(self, rel: str, data: bytes) -> None:
        """A file a step created (or a deleted one restored): always a new file, never written
        through a link to the checkout."""
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        with open(path, "xb") as fh:
            fh.write(data)

    def remove(self, rel: str) -> None:
        path = self.dir / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        parent = path.parent
        while parent != self.dir and parent.is_dir() and not any(parent.iterdir()) \
                and not (self.source / parent.relative_to(self.dir)).is_dir():
            parent.rmdir()
            parent = parent.parent

    def close(self) -> None:
        self._finalizer()


class _OverlayPath:
    """Just enough of ``Path`` for :class:`Draft` and the checks to read an overlaid file."""

    def __init__(self, real: Path, data: bytes | None) -> None:
        self._real = real
        self._data = data

    def is_dir(self) -> bool:
        return False

    def is_file(self) -> bool:
        return self._data is not None

    def exists(self) -> bool:
        return self._data is not None

    def read_bytes(self) -> bytes:
        if self._data is None:
            raise FileNotFoundError(str(self._real))
        return self._data

    def stat(self) -> os.stat_result:
        if self._data is None:
            raise FileNotFoundError(str(self._real))
        try:
            return self._real.stat()
        except FileNotFoundError:  # a file that exists only in memory: a plain file, mode 644
            return os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, len(self._data), 0, 0, 0))

    def __fspath__(self) -> str:
        return str(self._real)


class OverlayWorkspace(Workspace):
    """The workspace as the in-memory steps left it: the mirror's files, overridden by
    ``overlay`` (rel -> bytes, None = deleted).  Reads go through the overlay; only the
    mirror is ever written (files created or deleted, so the server can resolve them)."""

    def __init__(self, root: str | os.PathLike[str], mirror: Mirror | None = None) -> None:
        super().__init__(mirror.dir if mirror is not None else root)
        self.mirror = mirror
        self.overlay: dict[str, bytes | None] = {}

    def abspath(self, rel: str) -> Path:
        if rel in self.overlay:
            return _OverlayPath(super().abspath(rel), self.overlay[rel])  # type: ignore[return-value]
        return super().abspath(rel)

    def read(self, user_path: str) -> SourceFile:
        real, rel = self.resolve(user_path, must_exist=False)
        if rel in self.overlay:
            data = self.overlay[rel]
            if data is None:
                raise NotFound(f"no such file in the workspace: {user_path} (deleted by an earlier step)")
            return decode_source(data, rel)
        return super().read(user_path)

    def python_files(self) -> list[str]:
        files = set(super().python_files())
        for rel, data in self.overlay.items():
            if rel.endswith((".py", ".pyi")):
                (files.add if data is not None else files.discard)(rel)
        return sorted(files)

    def set(self, rel: str, before: bytes | None, after: bytes | None, base: bytes | None) -> None:
        """Record ``rel`` going from ``before`` to ``after`` (``base``: its bytes in the
        checkout); files that appear or vanish, and files other than Python sources, are
        written to (or removed from) the mirror."""
        if after == base:
            self.overlay.pop(rel, None)
        else:
            self.overlay[rel] = after
        python = rel.endswith((".py", ".pyi"))
        if self.mirror is None or (python and (before is None) == (after is None)):
            return
        # New and deleted files, and every other file (a configuration the server reads from
        # disk), reach the mirror; a changed Python file stays a document version.
        if after is None:
            self.mirror.remove(rel)
        else:
            self.mirror.write(rel, after)


__all__ = ["MIRROR_SKIP", "Mirror", "OverlayWorkspace"]
