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
import stat
import time
import tokenize
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import FsPermissions, IndexingUnsupported, NotFound

# The files that configure the pinned server for a workspace (pyright reads both).
CONFIG_FILES: tuple[str, ...] = ("pyrightconfig.json", "pyproject.toml")

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

    @cached_property
    def lines(self) -> tuple[str, ...]:
        """The text split at ``\n`` (a ``\r`` stays on its line); computed once per file read."""
        return tuple(self.text.split("\n"))

    @cached_property
    def line_starts(self) -> tuple[int, ...]:
        """Code-point offset of each line's start in ``text`` (plus one past the end)."""
        return tuple(accumulate((len(x) + 1 for x in self.lines), initial=0))

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


# A cached read is trusted only when the file's mtime and ctime were this much older than
# the moment it was read: file timestamps are coarse (a jiffy, more on network file
# systems), so a same-size rewrite right after a read could otherwise keep its stat key.
RACY_NS = 2_000_000_000
_READ_CACHE_MAX = 512

StatKey = tuple[int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    """What must stay equal for a cached read of a file to still be its content."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(st: os.stat_result, read_at_ns: int) -> bool:
    """Whether a read at ``read_at_ns`` may be trusted while ``stat_key`` stays equal: the
    file's last change must be older than a timestamp tick (git's racy-clean rule)."""
    return read_at_ns - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS


class Workspace:
    """A root directory and the rules for paths inside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.is_dir():
            raise NotFound(f"workspace {os.fspath(root)!r} is not a directory")
        self.root = Path(os.path.realpath(path))
        self._root_str = str(self.root)
        # rel -> (stat key, trusted, SourceFile): warm engines read the same files per call.
        self._files: dict[str, tuple[StatKey, bool, SourceFile]] = {}
        # user path -> (rel, st_dev, st_ino) of the file it resolved to inside the jail.
        self._jailed: dict[str, tuple[str, int, int]] = {}

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
        # Plain strings rather than pathlib here: this runs for every request.
        real_str = os.path.realpath(os.path.join(self._root_str, user_path))
        root = self._root_str
        prefix = root if root.endswith("/") else root + "/"
        if real_str == root:
            rel = "."
        elif real_str.startswith(prefix):
            rel = real_str[len(prefix):]
        else:
            raise FsPermissions(f"path {user_path!r} resolves outside the workspace "
                                f"(jail: the workspace root)")
        if must_exist and not os.path.exists(real_str):
            raise NotFound(f"no such file in the workspace: {user_path}")
        return Path(real_str), rel

    def contains(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def relpath(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix() if real != self.root else "."

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    # -- files -----------------------------------------------------------
    def read(self, user_path: str) -> SourceFile:
        """The file decoded; an unchanged file comes from a cache (same object, so its
        line table is computed once), keyed on its stat and guarded against racy stats."""
        path, rel, st, known = self._jailed_stat(user_path)
        key = stat_key(st)
        hit = self._files.get(rel)
        if hit is not None and hit[0] == key and hit[1]:
            return hit[2]
        now = time.time_ns()
        try:
            with open(path, "rb") as fh:
                opened = os.fstat(fh.fileno())
                same = (opened.st_dev, opened.st_ino) == (st.st_dev, st.st_ino)
                raw = fh.read() if same else None  # None: the path changed under us
        except PermissionError:
            raise FsPermissions(f"cannot read {rel}: permission denied") from None
        except (FileNotFoundError, NotADirectoryError):
            raw = None
        if raw is None:
            self._jailed.pop(user_path, None)
            if not known:
                raise NotFound(f"{user_path} changed while it was being read; try again")
            return self.read(user_path)  # once more, resolving the path afresh
        src = hit[2] if hit is not None and hit[2].raw == raw else decode_source(raw, rel)
        if len(self._files) >= _READ_CACHE_MAX:
            self._files.clear()
        self._files[rel] = (key, settled(st, now), src)
        return src

    def _jailed_stat(self, user_path: str) -> tuple[str, str, os.stat_result, bool]:
        """(path to open, rel, stat, whether a known resolution was reused) for a file
        inside the jail.

        A path is resolved (symlinks included) the first time; after that a ``stat``
        through the same path that lands on the same regular file (device and inode)
        stands for the resolution, since a retargeted link or a swapped directory
        leads to another file.  ``read`` then checks the opened file is that one.
        """
        known = self._jailed.get(user_path)
        if known is not None:
            path = os.path.join(self._root_str, user_path)
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == known[1:] and stat.S_ISREG(st.st_mode):
                return path, known[0], st, True
            del self._jailed[user_path]
        real, rel = self.resolve(user_path, must_exist=False)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise NotFound(f"no such file in the workspace: {user_path}") from None
        except PermissionError:
            raise FsPermissions(f"cannot read {rel}: permission denied") from None
        if stat.S_ISDIR(st.st_mode):
            raise NotFound(f"{rel} is a directory, not a file")
        if stat.S_ISREG(st.st_mode) and not user_path.startswith("file://"):
            if len(self._jailed) >= _READ_CACHE_MAX:
                self._jailed.clear()
            self._jailed[user_path] = (rel, st.st_dev, st.st_ino)
        return str(real), rel, st, False

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
