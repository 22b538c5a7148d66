"""The workspace: its root, the jail around it, and how its files are read.

Every path a user gives goes through :meth:`Workspace.resolve`, which resolves
symlinks before checking containment, so a link inside the workspace that
points outside it is refused like a ``..`` path (E/FS_PERMISSIONS) and nothing
outside is ever read.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import FsPermissions, IndexingUnsupported, NotFound

# Directories never walked when listing the workspace's Python files.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "node_modules",
                       ".mypy_cache", ".pytest_cache", ".tox", ".nox", ".lanser", "build", "dist",
                       ".eggs", "site-packages"})


@dataclass(frozen=True)
class SourceFile:
    """A decoded file: ``text`` is what positions index into (no BOM)."""

    rel: str
    raw: bytes
    text: str
    encoding: str  # the Python codec name the bytes were decoded with
    bom: bool

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def newline(self) -> str:
        return "\r\n" if "\r\n" in self.text else "\n"

    def encode(self, text: str) -> bytes:
        """Encode new text the way this file was encoded (BOM and codec kept)."""
        data = text.encode(self.encoding)
        return codecs.BOM_UTF8 + data if self.bom else data


def decode_source(raw: bytes, rel: str = "") -> SourceFile:
    """Decode Python source bytes as Python would (BOM, PEP 263 cookie, else UTF-8)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise IndexingUnsupported(f"{rel or 'file'}: {exc}") from None
    bom = raw.startswith(codecs.BOM_UTF8)
    body = raw[len(codecs.BOM_UTF8):] if bom else raw
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise IndexingUnsupported(
            f"{rel or 'file'} is not valid {codec} (byte {exc.start}) and declares no other "
            f"coding; positions in it cannot be indexed") from None
    return SourceFile(rel=rel, raw=raw, text=text, encoding=codec, bom=bom)


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Workspace:
    """A root directory and the rules for paths inside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.is_dir():
            raise NotFound(f"workspace {os.fspath(root)!r} is not a directory")
        self.root = Path(os.path.realpath(path))

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- paths -----------------------------------------------------------
    def resolve(self, user_path: str, *, must_exist: bool = True) -> tuple[Path, str]:
        """Map a user path (relative, absolute or ``file://``) to (real path, relative path).

        Raises FsPermissions when the path, after resolving symlinks, leaves
        the workspace, and NotFound when ``must_exist`` and it does not exist.
        """
        if user_path.startswith("file://"):
            parsed = urlparse(user_path)
            user_path = unquote(parsed.path)
        if "\0" in user_path or user_path == "":
            raise NotFound(f"invalid path {user_path!r}")
        candidate = Path(user_path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        real = Path(os.path.realpath(candidate))
        if not self.contains(real):
            raise FsPermissions(f"path {user_path!r} resolves outside the workspace "
                                f"(jail: the workspace root)")
        if must_exist and not real.exists():
            raise NotFound(f"no such file in the workspace: {user_path}")
        return real, self.relpath(real)

    def contains(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def relpath(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix() if real != self.root else "."

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    # -- files -----------------------------------------------------------
    def read(self, user_path: str) -> SourceFile:
        real, rel = self.resolve(user_path)
        if real.is_dir():
            raise NotFound(f"{rel} is a directory, not a file")
        try:
            raw = real.read_bytes()
        except PermissionError:
            raise FsPermissions(f"cannot read {rel}: permission denied") from None
        return decode_source(raw, rel)

    def python_files(self) -> list[str]:
        """Workspace-relative paths of every ``.py``/``.pyi`` file, sorted; symlinks
        leaving the workspace and tool directories are skipped."""
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            for name in filenames:
                if name.endswith((".py", ".pyi")):
                    full = Path(dirpath) / name
                    real = Path(os.path.realpath(full))
                    if self.contains(real):
                        out.append(full.relative_to(self.root).as_posix())
        return sorted(out)
