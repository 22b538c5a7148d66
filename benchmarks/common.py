"""Shared helpers for Lanser's benchmarks: workspaces, timing, machine, a bare client.

* :func:`copy_installed_package` copies a real package from the running
  interpreter's site-packages into a temporary workspace.
* :func:`median_ms` / :class:`Stopwatch`: medians of wall-clock samples.
* :func:`machine` says what the numbers were measured on.
* :class:`BareClient` is a stock pygls ``LanguageClient`` that starts the same
  pinned server binary Lanser starts (``server_spec().argv``), with the same
  environment, the same ``initialize`` parameters (captured from Lanser itself
  by :func:`lanser_setup`) and the same ``workspace/configuration`` answers,
  and then sends typed requests.  It is the baseline Lanser's overhead is
  measured against.

This file is also a script: ``python benchmarks/common.py bare-first-def
SETUP.json`` starts the server, initializes, opens one file, asks one
definition, shuts the server down cleanly and prints a JSON line.  The top of
the module imports only the standard library, pygls and lsprotocol so that
run measures a bare client's start-up, not Lanser's imports.
"""

from __future__ import annotations

import asyncio
import io
import json
import keyword
import os
import platform
import re
import shutil
import statistics
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as T
from lsprotocol.converters import get_converter
from pygls.lsp.client import LanguageClient

# pyright's log line once it has enumerated the workspace (as lanser.server.client).
_TRACKED_RE = re.compile(r"^(Found \d+ source files?|No source files found|No include entries)")

# Sections the pinned servers ask for in workspace/configuration.
CONFIG_SECTIONS = ("python", "python.analysis", "pyright", "basedpyright", "basedpyright.analysis")


# -- workspaces -------------------------------------------------------------------

def installed_package_dir(name: str) -> Path:
    """The source directory of an installed package (of the interpreter running this)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed in {sys.prefix}")
    return Path(list(spec.submodule_search_locations)[0])


def copy_installed_package(name: str, dest_root: Path) -> Path:
    """Copy an installed package to ``dest_root/name`` (no ``__pycache__``); returns the workspace root."""
    src = installed_package_dir(name)
    dest_root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest_root / name, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest_root


# -- timing -------------------------------------------------------------------------

def median_ms(samples_s: list[float]) -> float:
    """Median of samples given in seconds, in milliseconds (nan when empty)."""
    return statistics.median(samples_s) * 1000.0 if samples_s else float("nan")


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._t0


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- machine ------------------------------------------------------------------------

def machine() -> dict[str, str]:
    """nproc, CPU model, Python version, platform, load average: printed with every result table."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    try:  # other work on the machine skews every number: say how busy it was
        load = " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        load = "unknown"
    return {"nproc": str(nproc), "cpu": model, "python": platform.python_version(),
            "platform": f"{platform.system().lower()}-{platform.machine()}", "loadavg": load}


def machine_line() -> str:
    m = machine()
    return f"machine: nproc={m['nproc']}  cpu={m['cpu']}  python={m['python']}  {m['platform']}  loadavg={m['loadavg']}"


# -- positions ----------------------------------------------------------------------

@dataclass(frozen=True)
class Position:
    """An identifier's start: ``line``/``col`` 0-based, ``col`` in code points; ``col16`` in UTF-16."""

    rel: str
    line: int
    col: int
    col16: int
    name: str

    def cursor_selector(self) -> str:
        """Lanser's canonical cursor selector (1-based, code points: the default --index-io)."""
        return f"{self.rel}@L{self.line + 1}:C{self.col + 1}"


def identifier_positions(root: Path, rel: str, n: int, *, skip: frozenset[str] = frozenset({"self", "cls"}),
                         ) -> list[Position]:
    """``n`` identifier starts spread evenly over a file, each a different name.

    Deterministic: NAME tokens that are not keywords, at least 3 characters, not
    dunder names and not in ``skip``, taken at evenly spaced indices; when the name at an index
    was already taken, the next unused name after it is used.
    """
    text = (root / rel).read_text(encoding="utf-8")
    lines = text.split("\n")
    toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.NAME and not keyword.iskeyword(t.string)
            and not keyword.issoftkeyword(t.string) and len(t.string) >= 3 and t.string not in skip
            and not t.string.startswith("__")]
    out: list[Position] = []
    used: set[str] = set()
    for k in range(n):
        i = k * len(toks) // n
        while i < len(toks) and toks[i].string in used:
            i += 1
        if i >= len(toks):
            break
        tok = toks[i]
        used.add(tok.string)
        line, col = tok.start[0] - 1, tok.start[1]
        col16 = len(lines[line][:col].encode("utf-16-le")) // 2
        out.append(Position(rel, line, col, col16, tok.string))
    return out


# -- the server setup Lanser uses -------------------------------------------------------

def lanser_setup(root: Path) -> dict[str, Any]:
    """Start Lanser's own session once and capture how it talks to the server.

    Returns ``{"argv", "env", "cwd", "initialize", "settings"}``: the exact
    ``initialize`` params Lanser sent (its ``processId`` is replaced by the
    bare client's own), the environment and working directory the server is
    started with, and Lanser's answers to ``workspace/configuration``.
    """
    from lanser.server.pyenv import server_env
    from lanser.server.session import Session, SessionConfig
    from lanser.workspace import Workspace

    sent: list[dict[str, Any]] = []

    def hook(direction: str, frame: dict[str, Any]) -> None:
        if direction == "send" and frame.get("method") == "initialize":
            sent.append(frame)

    async def go() -> dict[str, Any]:
        session = Session(Workspace(str(root)), SessionConfig(frame_hook=hook))
        await session.start()
        try:
            settings = {s: session.settings_for(s) for s in CONFIG_SECTIONS}
            argv = session.spec.argv
        finally:
            await session.stop()
        return {"argv": argv, "env": server_env(), "cwd": str(root),
                "initialize": sent[0]["params"], "settings": settings}

    return asyncio.run(go())


# -- the bare client -----------------------------------------------------------------------

class BareClient:
    """A stock pygls LanguageClient driving the pinned server; typed requests, nothing else."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.setup = setup
        self.client = LanguageClient("bare-bench", "0")
        self.tracked = asyncio.Event()  # the server has enumerated the workspace's files
        settings = setup["settings"]

        @self.client.feature(T.WORKSPACE_CONFIGURATION)
        def _configuration(params: T.ConfigurationParams) -> list[Any]:
            return [settings.get(item.section) for item in params.items]

        @self.client.feature(T.CLIENT_REGISTER_CAPABILITY)
        def _register(params: Any) -> None:
            return None

        @self.client.feature(T.CLIENT_UNREGISTER_CAPABILITY)
        def _unregister(params: Any) -> None:
            return None

        @self.client.feature(T.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _progress_create(params: Any) -> None:
            return None

        @self.client.feature(T.WORKSPACE_DIAGNOSTIC_REFRESH)
        def _refresh(params: Any = None) -> None:
            return None

        @self.client.feature(T.WINDOW_LOG_MESSAGE)
        def _log(params: T.LogMessageParams) -> None:
            if _TRACKED_RE.match(params.message):
                self.tracked.set()

        for method in (T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, "$/progress",
                       "pyright/beginProgress", "pyright/reportProgress", "pyright/endProgress"):
            self.client.feature(method)(lambda *a: None)

    async def start(self) -> None:
        argv = self.setup["argv"]
        await self.client.start_io(argv[0], *argv[1:], env=self.setup["env"], cwd=self.setup["cwd"],
                                   start_new_session=True)
        raw = dict(self.setup["initialize"], processId=os.getpid())
        params = get_converter().structure(raw, T.InitializeParams)
        await self.client.initialize_async(params)
        self.client.initialized(T.InitializedParams())
        # As Lanser (and VS Code) do: pyright fetches its settings, and only then
        # answers requests, when told the configuration changed.
        self.client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={}))

    async def wait_tracked(self, timeout: float = 60.0) -> None:
        """Wait until the server has enumerated the workspace (needed for complete references)."""
        await asyncio.wait_for(self.tracked.wait(), timeout)

    def uri(self, rel: str) -> str:
        return (Path(self.setup["cwd"]) / rel).as_uri()

    def did_open(self, rel: str) -> None:
        text = (Path(self.setup["cwd"]) / rel).read_text(encoding="utf-8")
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=self.uri(rel), language_id="python", version=1, text=text)))

    async def ask(self, cmd: str, rel: str, line: int, character: int) -> Any:
        """``def``/``refs``/``hover`` at a 0-based UTF-16 position; the typed result."""
        doc = T.TextDocumentIdentifier(uri=self.uri(rel))
        pos = T.Position(line=line, character=character)
        if cmd == "def":
            return await self.client.text_document_definition_async(
                T.DefinitionParams(text_document=doc, position=pos))
        if cmd == "refs":
            return await self.client.text_document_references_async(
                T.ReferenceParams(text_document=doc, position=pos,
                                  context=T.ReferenceContext(include_declaration=True)))
        if cmd == "hover":
            return await self.client.text_document_hover_async(T.HoverParams(text_document=doc, position=pos))
        raise ValueError(cmd)

    async def stop(self) -> None:
        """``shutdown`` + ``exit`` and wait for the process, as Lanser's session does."""
        proc = self.client._server
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 5)
            self.client.exit(None)
            if proc is not None:
                await asyncio.wait_for(proc.wait(), 5)
        except (asyncio.TimeoutError, RuntimeError, ConnectionError):
            pass
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
            await self.client.stop()


def count_locations(result: Any) -> int:
    """How many locations a definition/references answer holds (typed or raw)."""
    if result is None:
        return 0
    if isinstance(result, (list, tuple)):  # pygls gives typed answers as tuples
        return len(result)
    return 1


# -- script: one cold bare request --------------------------------------------------------

async def _bare_first_def(setup: dict[str, Any], rel: str, line: int, character: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    bare = BareClient(setup)
    await bare.start()
    bare.did_open(rel)
    result = await bare.ask("def", rel, line, character)
    answered = time.perf_counter() - t0
    await bare.stop()
    return {"locations": count_locations(result), "answeredS": answered, "totalS": time.perf_counter() - t0}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "bare-first-def":
        print("usage: common.py bare-first-def SETUP.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    out = asyncio.run(_bare_first_def(job["setup"], job["rel"], job["line"], job["character"]))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
