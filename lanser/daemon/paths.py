"""Where daemons live: a private runtime directory and one set of files per identity.

The directory is ``$LANSER_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/lanser``,
else ``/tmp/lanser-<uid>``.  It is created 0700 and refused when another user
owns it or it is a symlink (someone could otherwise pre-create it in a shared
``/tmp`` and listen in our place).  A daemon's identity is the workspace's
real path, the server, the ``--python`` value and ``$VIRTUAL_ENV`` (which the
server's interpreter discovery reads): two CLIs that would build the same
Engine share one daemon.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import FsPermissions
from ..options import DEFAULT_SERVER

RUNTIME_ENV = "LANSER_RUNTIME_DIR"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the NUL


def runtime_dir(create: bool = True) -> Path:
    """The per-user runtime directory (created 0700 and checked when ``create``)."""
    explicit = os.environ.get(RUNTIME_ENV)
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "lanser"
    else:
        path = Path(f"/tmp/lanser-{os.getuid()}")
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise FsPermissions(f"cannot create the daemon runtime directory {path}: {exc.strerror}") from None
    if create or os.path.lexists(path):
        check_private_dir(path)
    return path


def check_private_dir(path: Path) -> None:
    """Refuse a runtime directory that is a symlink, not ours, or open to others (fixed if ours)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise FsPermissions(f"daemon runtime directory {path} is not a plain directory")
    if st.st_uid != os.getuid():
        raise FsPermissions(f"daemon runtime directory {path} belongs to uid {st.st_uid}, not to us")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


@dataclass(frozen=True)
class Identity:
    """What makes two requests share a daemon (and so a server)."""

    workspace: str          # real path
    server: str = DEFAULT_SERVER
    python: str | None = None
    virtual_env: str | None = None

    @classmethod
    def for_options(cls, workspace: str, server: str | None, python: str | None) -> "Identity":
        py = python
        if py and not os.path.isabs(py):
            py = os.path.abspath(py)  # the daemon runs elsewhere: resolve against our cwd
        return cls(os.path.realpath(workspace), server or DEFAULT_SERVER, py, os.environ.get("VIRTUAL_ENV") or None)

    @property
    def key(self) -> str:
        raw = json.dumps([self.workspace, self.server, self.python, self.virtual_env])
        return hashlib.sha256(raw.encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, str | None]:
        return {"workspace": self.workspace, "server": self.server, "python": self.python,
                "virtualEnv": self.virtual_env}


@dataclass(frozen=True)
class DaemonFiles:
    """The files of one daemon in the runtime directory."""

    dir: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.dir / f"{self.key}.sock"

    @property
    def lock(self) -> Path:
        """Held (flock) by the daemon for its whole life: lockable means no daemon."""
        return self.dir / f"{self.key}.lock"

    @property
    def start_lock(self) -> Path:
        """Held by whoever is starting the daemon, so two starters do not race."""
        return self.dir / f"{self.key}.start"

    @property
    def meta(self) -> Path:
        return self.dir / f"{self.key}.json"

    @property
    def log(self) -> Path:
        return self.dir / f"{self.key}.log"


def files_for(ident: Identity, create: bool = True) -> DaemonFiles:
    files = DaemonFiles(runtime_dir(create), ident.key)
    if len(os.fsencode(str(files.socket))) > SOCKET_PATH_MAX:
        raise FsPermissions(f"daemon socket path {files.socket} is too long for a Unix socket; "
                            f"set {RUNTIME_ENV} to a shorter directory")
    return files


def all_daemon_files() -> list[DaemonFiles]:
    """Every daemon that left a meta file in the runtime directory (for ``status --all``)."""
    d = runtime_dir(create=False)
    if not d.is_dir():
        return []
    return [DaemonFiles(d, p.stem) for p in sorted(d.glob("*.json"))]
