"""The engine: one workspace, one lazily started server, every operation as a bundle.

The CLI, ``batch``, ``reward``, the daemon and the SDK all go through
:class:`Engine`, so the same request gives the same bundle whichever door it
came in by.  ``run`` never raises a LanserError: failures become error
bundles with the contract's exit code.
"""

from __future__ import annotations

import platform as _platform
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from lsprotocol import types as T

from .. import codec
from ..bundles import normalize as N
from ..bundles.canonical import HASHING, with_id
from ..bundles.envelope import BUNDLE_VERSION, error_bundle
from ..diagnostics.workspace import WorkspaceDiagnostics, pull_files
from ..options import Options
from ..errors import BadInput, InternalError, LanserError, NotFound, UnsupportedCap
from ..selectors import SelectorSpec, parse_selector, resolve_selector
from ..selectors.resolution import Resolution
from ..selectors.grammar import looks_like_selector
from ..selectors.resolve import token_at
from ..server.pyenv import PythonEnv, choose_python, search_paths
from ..server.registry import ServerSpec, server_spec
from ..server.session import FrameHook, Session, SessionConfig
from ..version import __version__
from ..workspace import Workspace

__all__ = ["BUNDLE_VERSION", "Context", "Engine", "Options", "Request", "error_bundle"]

SERVER_ENCODING = "utf-16"  # what the pinned servers use (they do not offer utf-8)
_PLATFORM = f"{_platform.system().lower()}-{_platform.machine()}"

# Which server capability each command needs.
_NEEDS = {"def": "definitionProvider", "refs": "referencesProvider", "hover": "hoverProvider",
          "symbols": "documentSymbolProvider", "prepare-rename": "renameProvider",
          "rename": "renameProvider", "actions": "codeActionProvider"}


@dataclass
class Request:
    cmd: str
    selector: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Holds the workspace and (once needed) a warm server session."""

    def __init__(self, options: Options, *, frame_hook: FrameHook | None = None,
                 session_factory: Callable[[Workspace, SessionConfig], Session] | None = None,
                 spec: ServerSpec | None = None) -> None:
        self.options = options
        codec.check_encoding(options.index_io)
        self.ws = Workspace(options.workspace)
        self.frame_hook = frame_hook
        # True once the running command's apply has passed its commit point: from then on a
        # Ctrl-C must not lose the report of the edit that landed (cli.run_async).
        self.committed = False
        self.session: Session | None = None
        self._python: PythonEnv | None = None
        self._providers: tuple[Any, tuple[str, ...]] | None = None  # (server info, provider names)
        # Trace replay passes a session answering from recorded frames, and the recorded server.
        self.session_factory = session_factory or Session
        self.cleanups: list[Callable[[], Any]] = []  # run by close(), last added first
        self.fact_listeners: list[Callable[[str, Any, Any], Any]] = []  # told each environment fact
        self.spec = spec or server_spec(options.server)
        self.handlers: dict[str, Callable[[Request, "Context"], Awaitable[None]]] = {
            "locate": _locate, "def": _definition, "refs": _references, "hover": _hover,
            "symbols": _symbols, "diag": _diag}
        from .mutations import mutation_handlers  # late: mutations imports this module
        self.handlers.update(mutation_handlers())

    # -- lifecycle ------------------------------------------------------------
    async def server(self) -> Session:
        if self.session is None:
            session = self.session_factory(self.ws, SessionConfig(server=self.options.server, python=self.options.python,
                                                     timeout=self.options.timeout, frame_hook=self.frame_hook))
            self._python = session.python
            await session.start()
            self.session = session
        return self.session

    async def close(self) -> None:
        try:
            if self.session is not None:
                session, self.session = self.session, None
                await session.stop()
        finally:
            cleanups, self.cleanups = self.cleanups, []
            for fn in reversed(cleanups):
                fn()

    # -- facts read from the environment (a replay answers them from the trace) -----------------
    def library_fact(self, external: frozenset[str], workspace_tops: frozenset[str],
                     stdlib: frozenset[str]) -> frozenset[str]:
        """Which of the libraries ``external`` reach a workspace module (diagnostics/libraries.py)."""
        from ..diagnostics.libraries import reaching_libraries
        from ..diagnostics.stdlib import typeshed_dir

        typeshed = typeshed_dir(self.spec.name)
        answer = reaching_libraries(external, workspace_tops, stdlib, search_paths(self.python),
                                    typeshed / "stubs" if typeshed is not None else None)
        for listener in list(self.fact_listeners):
            listener("libraries", sorted(external), sorted(answer))
        return answer

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def python(self) -> PythonEnv:
        if self._python is None:
            self._python = choose_python(self.ws.root, self.options.python)
        return self._python

    # -- environment ---------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        s = self.session
        encoding = s.info.position_encoding if s and s.info else SERVER_ENCODING
        digest = s.config_digest() if s else Session.static_config_digest(self.ws)
        return {
            "server": {"name": self.spec.name, "version": self.spec.version},
            "positionEncoding": encoding,
            "python": {"version": self.python.version},
            "configDigest": digest,
            "platform": _PLATFORM,
            "lanserVersion": __version__,
        }

    def capabilities(self) -> dict[str, Any]:
        s = self.session
        info = s.info if s else None
        if self._providers is None or self._providers[0] is not info:
            caps = info.capabilities if info else {}
            self._providers = (info, tuple(sorted(k for k, v in caps.items() if v and k.endswith("Provider"))))
        return {"partialResult": False, "cancellable": True, "server": list(self._providers[1])}

    @property
    def encoding(self) -> str:
        s = self.session
        return s.info.position_encoding if s and s.info else SERVER_ENCODING

    # -- running ---------------------------------------------------------------
    async def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one command and return its bundle (ok or error); never raises LanserError."""
        req = Request(cmd, selector, dict(args or {}))
        ctx = Context(self, req)
        self.committed = False
        started = time.monotonic()
        try:
            handler = self.handlers.get(cmd)
            if handler is None:
                raise BadInput(f"unknown command {cmd!r}; one of {', '.join(sorted(self.handlers))}")
            await handler(req, ctx)
        except LanserError as exc:
            ctx.error = exc
        except Exception as exc:  # an internal failure: exit 1 with a message, no traceback
            ctx.error = InternalError(f"internal error: {type(exc).__name__}: {exc}")
        ctx.elapsed = time.monotonic() - started
        return ctx.bundle()


class Context:
    """What one command has gathered so far; turns into the bundle."""

    def __init__(self, engine: Engine, req: Request) -> None:
        self.engine = engine
        self.req = req
        self.spec: SelectorSpec | None = None
        self.resolution: Resolution | None = None
        self.facts: dict[str, Any] | None = None
        self.edits: dict[str, Any] | None = None
        self.process_reward: dict[str, Any] | None = None
        self.error: LanserError | None = None
        self.meta: dict[str, Any] = {}
        self.elapsed = 0.0

    # -- selector -------------------------------------------------------------
    def parse(self) -> SelectorSpec:
        if self.req.selector is None:
            raise NotFound(f"{self.req.cmd} needs a selector")
        self.spec = parse_selector(self.req.selector, indexing=self.engine.options.index_io)
        return self.spec

    def resolve(self) -> Resolution:
        spec = self.spec or self.parse()
        # Only `locate` reports a freshly minted anchor; minting costs more than a warm def.
        self.resolution = resolve_selector(spec, self.engine.ws, original=self.req.selector or "",
                                           encoding=self.engine.encoding, anchor=self.req.cmd == "locate")
        return self.resolution

    def position(self) -> tuple[str, T.Position]:
        """The resolved target's selection start: what the server is asked about."""
        res = self.resolution or self.resolve()
        sl, sc = res.selection_range[0], res.selection_range[1]
        return res.path, T.Position(line=sl, character=sc)

    async def sync_target(self, session: Session, rel: str) -> str:
        """Send the target file's current text so the server answers about what is on disk."""
        res = self.resolution
        src = res.source if res is not None and res.path == rel and res.source is not None else None
        session.sync(rel, (src or self.engine.ws.read(rel)).text)
        return session.uri(rel)

    # -- bundle ----------------------------------------------------------------
    def bundle(self) -> dict[str, Any]:
        eng = self.engine
        err = self.error
        exit_code = err.exit_code if err else 0
        request: dict[str, Any] = {"cmd": self.req.cmd, "selector": self.spec.to_json() if self.spec else None,
                                   "args": self.req.args}
        resolution = self.resolution.to_json() if self.resolution else None
        if err is not None and getattr(err, "candidates", None):
            resolution = resolution or {"original": self.req.selector, "canonical": None, "resolved": None}
            resolution["disambiguation"] = err.candidates  # type: ignore[attr-defined]
        meta: dict[str, Any] = {"exit_code": exit_code, "sorting_keys": list(N.SORTING_KEYS),
                                "hashing": dict(HASHING), "truncated": False, "cursor": None,
                                "indexIo": eng.options.index_io}
        meta.update(self.meta)
        if eng.options.verbose:
            meta["volatile"] = {"elapsedMs": round(self.elapsed * 1000, 3), "root": str(eng.ws.root),
                                "python": eng.python.path, "pythonFull": eng.python.full_version,
                                "serverPid": eng.session.pid if eng.session else None}
        bundle: dict[str, Any] = {
            "version": BUNDLE_VERSION,
            "status": "error" if err else "ok",
            "request": request,
            "resolution": resolution,
            "facts": self.facts,
            "edits": self.edits,
            "processReward": self.process_reward,
            "environment": eng.environment(),
            "capabilities": eng.capabilities(),
            "error": err.to_json() if err else None,
            "meta": meta,
        }
        if eng.options.verbose and eng.options.index_io != eng.encoding:
            _add_io_ranges(bundle, eng)
        return with_id(bundle)


# -- handlers -------------------------------------------------------------------

def _require(ctx: Context, session: Session, cmd: str) -> None:
    need = _NEEDS.get(cmd)
    caps = session.info.capabilities if session.info else {}
    if need and not caps.get(need):
        raise UnsupportedCap(f"{session.spec.name} does not offer {need} (needed by {cmd})")


async def _locate(req: Request, ctx: Context) -> None:
    res = ctx.resolve()
    src = ctx.engine.ws.read(res.path)
    lines = src.lines
    sl, _, el, _ = res.range
    ctx.facts = {"provenance": "structural",
                 "preview": "\n".join(line.rstrip("\r") for line in lines[sl: min(el + 1, sl + 40)])}


async def _position_request(ctx: Context, cmd: str, method: str, params: Callable[[str, T.Position], Any]) -> Any:
    ctx.resolve()
    session = await ctx.engine.server()
    _require(ctx, session, cmd)
    rel, pos = ctx.position()
    uri = await ctx.sync_target(session, rel)
    return await session.request(method, params(uri, pos))


def _doc(uri: str) -> T.TextDocumentIdentifier:
    return T.TextDocumentIdentifier(uri=uri)


def _warn_if_not_on_identifier(ctx: Context, facts: dict[str, Any], empty: bool) -> dict[str, Any]:
    """An empty answer at a position that is not on a name (a keyword, an operator, white
    space, a comment, a literal) says nothing about any symbol: the facts carry a warning
    ``W/NOT_ON_IDENTIFIER`` saying so (README: "Empty answers"); the exit code stays 0."""
    res = ctx.resolution
    if not empty or res is None:
        return facts
    src = res.source if res.source is not None else ctx.engine.ws.read(res.path)
    line, col = res.selection_range[0], res.selection_range[1]
    token = token_at(ctx.engine.ws, src, line, col, ctx.engine.encoding)
    if token is not None and token[0] == "identifier":
        return facts
    what = "white space or the end of a line" if token is None else f"{token[1]!r} ({token[0]})"
    facts["warnings"] = [{
        "code": "W/NOT_ON_IDENTIFIER", "path": res.path, "position": [line, col],
        "message": f"{res.path}:{line + 1}:{col + 1} is on {what}, not on a name: the empty answer says "
                   f"nothing about any symbol; ask at a name (a cursor on it, or a py:// selector)"}]
    return facts


async def _definition(req: Request, ctx: Context) -> None:
    raw = await _position_request(ctx, "def", T.TEXT_DOCUMENT_DEFINITION,
                                  lambda uri, pos: T.DefinitionParams(text_document=_doc(uri), position=pos))
    items = N.locations(raw, ctx.engine.ws.root)
    ctx.facts = _warn_if_not_on_identifier(ctx, {"definitions": _page(ctx, items), "provenance": "lsp"},
                                           not items)


async def _references(req: Request, ctx: Context) -> None:
    raw = await _position_request(ctx, "refs", T.TEXT_DOCUMENT_REFERENCES,
                                  lambda uri, pos: T.ReferenceParams(
                                      text_document=_doc(uri), position=pos,
                                      context=T.ReferenceContext(include_declaration=True)))
    items = N.locations(raw, ctx.engine.ws.root)
    ctx.facts = _warn_if_not_on_identifier(ctx, {"references": _page(ctx, items), "provenance": "lsp"},
                                           not items)


async def _hover(req: Request, ctx: Context) -> None:
    raw = await _position_request(ctx, "hover", T.TEXT_DOCUMENT_HOVER,
                                  lambda uri, pos: T.HoverParams(text_document=_doc(uri), position=pos))
    hover = N.hover(raw)
    ctx.facts = _warn_if_not_on_identifier(ctx, {"hover": hover, "provenance": "lsp"}, hover is None)


def _target_file(ctx: Context, target: str) -> tuple[str, Resolution | None]:
    """A PATH or a selector: the file it names (and the resolution, for selectors)."""
    ws = ctx.engine.ws
    if looks_like_selector(target):
        res = ctx.resolve()
        return res.path, res
    real, rel = ws.resolve(target)
    if real.is_dir():
        raise NotFound(f"{target} is a directory; give a file or a selector")
    ws.read(rel)  # decodes: a non-UTF-8 file is a clear error here
    return rel, None


async def _symbols(req: Request, ctx: Context) -> None:
    rel, _ = _target_file(ctx, req.selector or "")
    session = await ctx.engine.server()
    _require(ctx, session, "symbols")
    uri = await ctx.sync_target(session, rel)
    raw = await session.request(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL,
                                T.DocumentSymbolParams(text_document=_doc(uri)))
    ctx.facts = {"symbols": _page(ctx, N.symbols(raw, rel)), "provenance": "lsp"}


async def _diag(req: Request, ctx: Context) -> None:
    # A bad target (outside the jail, missing, undecodable) fails before any server starts.
    target = _target_file(ctx, req.selector) if req.selector else None
    session = await ctx.engine.server()
    if target is None:
        snapshot = await WorkspaceDiagnostics(session).pull_all()
        items = snapshot.all()
        counts = snapshot.counts()
        scope: dict[str, Any] = {"kind": "workspace"}
    else:
        rel, res = target
        await ctx.sync_target(session, rel)
        items = list((await pull_files(session, [rel])).get(rel, ()))
        scope = {"kind": "file", "path": rel}
        if res is not None and ctx.spec is not None and ctx.spec.kind in ("symbol", "ast", "anchor", "range"):
            items = [d for d in items if _overlaps(d["range"], list(res.range))]
            scope = {"kind": "range", "path": rel, "range": list(res.range)}
        counts = N.count_diagnostics(items, [rel])
    ctx.facts = {"diagnostics": _page(ctx, items), "counts": counts, "scope": scope, "provenance": "lsp"}


def _overlaps(a: list[int], b: list[int]) -> bool:
    return (a[0], a[1]) <= (b[2], b[3]) and (b[0], b[1]) <= (a[2], a[3])


def _page(ctx: Context, items: list[Any]) -> list[Any]:
    page, truncated, cursor = N.truncate(items, ctx.engine.options.cursor)
    if truncated or ctx.engine.options.cursor:
        ctx.meta["truncated"] = truncated
        ctx.meta["cursor"] = cursor
        ctx.meta["total"] = len(items)
    return page


def _add_io_ranges(bundle: dict[str, Any], eng: Engine) -> None:
    """--verbose: an ``ioRange`` in --index-io units beside every workspace range."""
    cache: dict[str, Sequence[str] | None] = {}

    def lines_of(path: str) -> Sequence[str] | None:
        if path not in cache:
            try:
                cache[path] = eng.ws.read(path).lines
            except LanserError:
                cache[path] = None
        return cache[path]

    def visit(node: Any, path: str | None) -> None:
        if isinstance(node, dict):
            here = node.get("path", path) if isinstance(node.get("path", path), str) else path
            for key in ("range", "selectionRange"):
                rng = node.get(key)
                if here and isinstance(rng, list) and len(rng) == 4 and "://" not in here:
                    lines = lines_of(here)
                    if lines is not None:
                        try:
                            node["io" + key[0].upper() + key[1:]] = codec.convert_range(
                                lines, rng, eng.encoding, eng.options.index_io)
                        except LanserError:
                            pass
            for k, v in list(node.items()):
                if k not in ("range", "selectionRange"):
                    visit(v, here)
        elif isinstance(node, list):
            for v in node:
                visit(v, path)

    visit(bundle.get("resolution"), None)
    visit(bundle.get("facts"), None)
