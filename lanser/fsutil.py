"""The one way Lanser replaces a file: a temporary file in the same directory, renamed over it.

A reader never sees a half-written file: it sees the old content or the new.
:func:`write_atomic` writes bytes (fsync, permission bits, optional owner, fsync
of the directory); :class:`AtomicFile` is the streaming form for outputs
written as they are produced (``reward -o``, ``batch -o``): nothing appears at
the target until :meth:`AtomicFile.commit`.  Used by the edit transaction, the
snapshot store, the daemon's meta file and the commands' output files.  Only
the standard library is imported (the daemon's light path uses it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Callable, TextIO

from .errors import FsPermissions


def default_file_mode() -> int:
    """The permission bits a new file gets (``0o666`` less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` (hidden, never a name Lanser reads)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def write_atomic(target: Path, data: bytes, *, mode: int | None = None, tmp: Path | None = None,
                 owner: tuple[int, int] | None = None, durable: bool = True,
                 replace: Callable[[Path, Path], None] = os.replace) -> None:
    """Write ``data`` to ``tmp`` (beside ``target``; a fresh name by default), fsync, set
    ``mode`` (default: a new file's) and ``owner``, rename over ``target``, fsync the
    directory.  On any failure the temporary file is removed and the error raised; the
    target keeps its old content.  ``replace`` is a seam for fault-injection tests."""
    tmp = tmp if tmp is not None else temp_path(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
            fh.flush()
        os.fchmod(fd, default_file_mode() if mode is None else mode)
        if owner is not None:
            with contextlib.suppress(OSError):
                os.fchown(fd, owner[0], owner[1])
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(target.parent)


class AtomicFile:
    """A text file written as it is produced and renamed over ``target`` by :meth:`commit`
    (:meth:`discard` drops it).  Failures are E/FS_PERMISSIONS naming ``target``."""

    def __init__(self, target: Path, *, encoding: str = "utf-8", newline: str | None = "\n") -> None:
        self.target = target
        parent = target.parent if str(target.parent) else Path(".")
        self.tmp: Path | None = temp_path(parent / target.name)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, default_file_mode())
        except OSError as exc:
            self.tmp = None
            raise self._error(exc) from None
        self.stream: TextIO = os.fdopen(fd, "w", encoding=encoding, newline=newline)

    def _error(self, exc: OSError) -> FsPermissions:
        return FsPermissions(f"cannot write {self.target}: {exc.strerror or exc}")

    def commit(self) -> None:
        """Rename the written file over the target (once; later calls do nothing)."""
        if self.tmp is None:
            return
        try:
            self.stream.close()
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from None
        self.tmp = None

    def discard(self) -> None:
        """Remove the temporary file; the target is left as it was."""
        if self.tmp is None:
            return
        with contextlib.suppress(OSError):
            self.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        self.tmp = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_tree(dest: Path, files: dict[str, bytes | None]) -> None:
    """Bring the files of ``dest`` named in ``files`` to the given bytes (None: removed).

    For scratch copies (a trajectory's end state written into a clone to diff it, a
    benchmark's tree checked by the CLI), not the workspace: no atomicity is promised."""
    for rel, data in files.items():
        path = dest / rel
        if data is None:
            if path.is_file() or path.is_symlink():
                path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
