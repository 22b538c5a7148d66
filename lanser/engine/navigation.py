"""The read-only commands: locate, def, refs, hover, symbols, diag.

Each handler resolves the selector (structural, no server for ``locate``), asks
the server one request through its :class:`~lanser.server.session.Session` and
turns the raw answer into bundle facts with the pure converters of
:mod:`lanser.bundles.normalize`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from lsprotocol import types as T

from ..bundles import normalize as N
from ..diagnostics.workspace import WorkspaceDiagnostics, pull_files
from ..errors import NotFound
from ..selectors.grammar import looks_like_selector
from ..selectors.resolution import Resolution
from ..selectors.resolve import token_at
from .planner import overlaps, require

if TYPE_CHECKING:
    from .context import Context, Request

Handler = Callable[["Request", "Context"], Awaitable[None]]


def navigation_handlers() -> dict[str, Handler]:
    """The handlers this module adds to ``Engine.handlers``."""
    return {"locate": _locate, "def": _definition, "refs": _references, "hover": _hover,
            "symbols": _symbols, "diag": _diag}


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
    require(session, cmd)
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
    require(session, "symbols")
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
            items = [d for d in items if overlaps(d["range"], list(res.range))]
            scope = {"kind": "range", "path": rel, "range": list(res.range)}
        counts = N.count_diagnostics(items, [rel])
    ctx.facts = {"diagnostics": _page(ctx, items), "counts": counts, "scope": scope, "provenance": "lsp"}


def _page(ctx: Context, items: list[Any]) -> list[Any]:
    page, truncated, cursor = N.truncate(items, ctx.engine.options.cursor)
    if truncated or ctx.engine.options.cursor:
        ctx.meta["truncated"] = truncated
        ctx.meta["cursor"] = cursor
        ctx.meta["total"] = len(items)
    return page
