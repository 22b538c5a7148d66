"""Bases on a worker's machine: a directory as it is, or a commit materialised once, read-only.

A commit base is ``git archive`` of the commit unpacked under the cache directory, in a
directory named after a digest of (repository, commit).  It is made once per machine: a
lock file serialises the workers of one machine, the tree is unpacked into a temporary
directory, made read-only (files 0444, directories 0555) and renamed into place, so a
directory of that name is always complete.  Tar members are extracted with the ``data``
filter (no absolute paths, no ``..``, no links leading out of the tree, no devices).
The runners never write it either: they run on a private mirror (lanser/rewards/overlay.py).

What ``git archive`` leaves out (``export-ignore``) or rewrites (``export-subst``) is left
out or rewritten here too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import FsPermissions, NotFound
from .requests import BaseSpec


def base_dir(spec: BaseSpec, cache_dir: str) -> Path:
    """Where ``spec``'s tree is on this machine (made if needed)."""
    if spec.kind == "dir":
        path = Path(spec.path)
        if not path.is_dir():
            raise NotFound(f"base directory {spec.path!r} does not exist on this machine")
        return path
    assert spec.commit is not None
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(spec.key.encode()).hexdigest()[:24]
    final = root / name
    if final.is_dir():
        return final
    with open(root / f"{name}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            _archive(spec.path, spec.commit, tmp)
            make_read_only(tmp)
            os.rename(tmp, final)
        except BaseException:
            remove_tree(tmp)
            raise
    return final


def _archive(repo: str, commit: str, dest: Path) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with tempfile.TemporaryFile() as buf:
        proc = subprocess.run(["git", "-C", repo, "archive", "--format=tar", commit], stdout=buf,
                              stderr=subprocess.PIPE, env=env, timeout=600)
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise NotFound(f"git archive of {commit} in {repo!r} failed: {why[-1] if why else proc.returncode}")
        buf.seek(0)
        try:
            with tarfile.open(fileobj=buf, mode="r:") as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise FsPermissions(f"cannot unpack {commit} of {repo!r}: {exc}",
                                details={"reason": "unsafe-archive"}) from None


def make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o222)
        os.chmod(dirpath, 0o555)


def remove_tree(root: Path | str) -> None:
    """Remove a (read-only) tree."""
    root = str(root)
    if not os.path.lexists(root):
        return
    for dirpath, dirnames, _ in os.walk(root):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                with contextlib.suppress(OSError):
                    os.chmod(p, 0o755)
    shutil.rmtree(root, ignore_errors=True)


__all__ = ["base_dir", "make_read_only", "remove_tree"]
