"""Turning server URIs into the portable paths bundles carry.

Inside the workspace a location is its workspace-relative path.  Outside it
(typeshed, the standard library, site-packages) it gets a root-relative form
such as ``typeshed://stdlib/builtins.pyi`` or ``site-packages://click/core.py``
so that bundles never contain this machine's absolute paths and stay equal
across checkouts and machines.
"""

from __future__ import annotations

import os
import sysconfig
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote, urlparse


def to_uri(path: Path) -> str:
    """A ``file://`` URI the way the server spells it (percent-encoded)."""
    return "file://" + quote(path.as_posix(), safe="/:")


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path))


@lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(p) for p in (paths.get("stdlib"), paths.get("platstdlib")) if p)


def portable_path(uri: str, root: Path) -> str:
    """Workspace-relative path, or a portable ``scheme://`` form outside the workspace."""
    if not uri.startswith("file:"):
        return uri
    path = Path(os.path.realpath(uri_to_path(uri)))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    posix = path.as_posix()
    for marker, scheme in (("/typeshed-fallback/", "typeshed://"), ("/site-packages/", "site-packages://"),
                           ("/dist-packages/", "site-packages://")):
        if marker in posix:
            return scheme + posix.split(marker, 1)[1]
    for lib in _stdlib_dirs():
        if posix.startswith(lib + "/"):
            return "stdlib://" + posix[len(lib) + 1:]
    return "external://" + path.name


@lru_cache(maxsize=16384)
def portable_label(uri: str, root: Path) -> str:
    """:func:`portable_path`, cached, for the locations navigation reports.

    A warm session maps the same few hundred URIs over and over, and each
    mapping resolves symlinks.  A symlink retargeted mid-session keeps its old
    label until the process ends, so edits (which are written to the paths)
    use the uncached :func:`portable_path`.
    """
    return portable_path(uri, root)
