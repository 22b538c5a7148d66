"""The one planner for renames and edits: from a resolved selector to an immutable
:class:`~lanser.edits.EditPlan`, with the refusals every caller shares.

``rename``/``edit`` (:mod:`lanser.engine.mutations`) and the reward runner's
``rename``/``edit`` steps (:mod:`lanser.rewards.runner`) plan through these
functions, so a refusal has one code, one reason and one message wherever it
happens (README, "Safe mutations"):

- a server without the capability a command needs: E/UNSUPPORTED_CAP (:func:`require`);
- prepare-rename refused (builtin, library symbol, keyword, no symbol): E/NOT_FOUND,
  ``details.reason = "prepare-rename-refused"``;
- a server that proposes no rename: E/NOT_FOUND, reason ``no-edit``;
- an edit reaching outside the workspace: E/FS_PERMISSIONS, reason
  ``outside-workspace``, before a plan exists;
- a plan that changes nothing: E/APPLY_CONFLICT, reason ``no-op`` (:func:`refuse_noop`).

What happens to a plan afterwards (dry-run prediction, apply, the step's
record) is the caller's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lsprotocol import types as T

from .. import codec
from ..bundles import normalize as N
from ..bundles.paths import portable_path, uri_to_path
from ..edits import EditPlan, plan_from_workspace_edit, reindent
from ..edits.reindent import indentation_of
from ..errors import ApplyConflict, FsPermissions, NotFound, UnsupportedCap
from ..server.session import Session
from ..workspace import Workspace

if TYPE_CHECKING:
    from .context import Context

# Which server capability each command needs.
NEEDS = {"def": "definitionProvider", "refs": "referencesProvider", "hover": "hoverProvider",
         "symbols": "documentSymbolProvider", "prepare-rename": "renameProvider",
         "rename": "renameProvider", "actions": "codeActionProvider"}


def require(session: Session, cmd: str) -> None:
    """The one capability check: E/UNSUPPORTED_CAP when the server lacks what ``cmd`` needs."""
    need = NEEDS.get(cmd)
    caps = session.info.capabilities if session.info else {}
    if need and not caps.get(need):
        raise UnsupportedCap(f"{session.spec.name} does not offer {need} (needed by {cmd})")


def overlaps(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether two flat ranges ``[sL, sC, eL, eC]`` share a position (touching counts)."""
    return (a[0], a[1]) <= (b[2], b[3]) and (b[0], b[1]) <= (a[2], a[3])


@dataclass(frozen=True)
class Planned:
    """A mutation planned from a WorkspaceEdit: the edit as the server (or Lanser) wrote it,
    the plan, and what it is (for messages: ``rename of 'a' to 'b'``, ``edit of SELECTOR``)."""

    raw: Mapping[str, Any]
    plan: EditPlan
    what: str


# -- pure helpers ------------------------------------------------------------------

def _edit_uris(edit: Mapping[str, Any]) -> Iterable[str]:
    for op in edit.get("documentChanges") or []:
        if "textDocument" in op:
            yield op["textDocument"]["uri"]
        for key in ("uri", "oldUri", "newUri"):
            if isinstance(op.get(key), str):
                yield op[key]
    yield from (edit.get("changes") or {})


def _to_path(uri: str) -> Path:
    return uri_to_path(uri) if uri.startswith("file:") else Path(uri)


def outside_paths(edit: Mapping[str, Any], ws: Workspace) -> list[str]:
    """Portable forms of every file ``edit`` touches outside the workspace
    (symlinks resolved: a link inside pointing outside is outside)."""
    out = set()
    for uri in _edit_uris(edit):
        p = _to_path(uri)
        real = Path(os.path.realpath(p if p.is_absolute() else ws.root / p))
        if not ws.contains(real):
            out.add(portable_path(uri, ws.root) if uri.startswith("file:") else uri)
    return sorted(out)


def portable_workspace_edit(edit: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """The server's WorkspaceEdit with every URI made workspace-relative (portable
    outside), text edits sorted by range; no absolute path survives into the bundle."""
    def p(uri: str) -> str:
        return portable_path(uri, root) if uri.startswith("file:") else uri

    def sorted_edits(edits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(edits, key=lambda e: (N.flat_range(e["range"]), e.get("newText", "")))

    out: dict[str, Any] = {}
    if edit.get("documentChanges"):
        ops = []
        for op in edit["documentChanges"]:
            op = dict(op)
            if "textDocument" in op:
                op["textDocument"] = {**op["textDocument"], "uri": p(op["textDocument"]["uri"])}
                op["edits"] = sorted_edits(list(op.get("edits") or []))
            for key in ("uri", "oldUri", "newUri"):
                if isinstance(op.get(key), str):
                    op[key] = p(op[key])
            ops.append(op)
        if all("textDocument" in op for op in ops):  # pure text edits: order-free, so sort
            ops.sort(key=lambda op: op["textDocument"]["uri"])
        out["documentChanges"] = ops
    if edit.get("changes"):
        out["changes"] = {p(u): sorted_edits(list(es or [])) for u, es in sorted(edit["changes"].items())}
    return out


def replacement_edit(src_lines: Sequence[str], rng: list[int], text: str, encoding: str,
                     newline: str) -> dict[str, Any]:
    """The TextEdit replacing ``rng`` with ``text`` re-indented to the target: the
    first line continues the target's line; later lines get the target line's
    indentation; a final newline is kept only if the replaced text ended with one."""
    sl, sc, el, ec = rng
    line = src_lines[sl]
    start_cp = codec.to_codepoints(line, sc, encoding)
    prefix = line[:start_cp]
    indent = prefix if not prefix.strip() else indentation_of(line)
    new = reindent(text, indent, newline=newline, first_line=False)
    replaced_ends_line = ec == 0 and el > sl
    if not replaced_ends_line:
        new = new.removesuffix(newline) if new.endswith(newline) else new.rstrip("\n")
    elif not new.endswith(newline):
        new += newline
    return {"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
            "newText": new}


# -- refusals ------------------------------------------------------------------------

def refuse_outside(ctx: Context, edit: Mapping[str, Any]) -> None:
    """E/FS_PERMISSIONS when ``edit`` reaches outside the workspace (the bundle's ``edits``
    shows the edit, nothing is planned or written)."""
    outside = outside_paths(edit, ctx.engine.ws)
    if outside:
        ctx.edits = {"workspaceEdit": portable_workspace_edit(edit, ctx.engine.ws.root), "applied": False,
                     "outside": outside}
        raise FsPermissions(f"the server's edit reaches outside the workspace ({', '.join(outside)}); "
                            f"refused, nothing written", details={"reason": "outside-workspace",
                                                                  "paths": outside})


def refuse_noop(planned: Planned) -> None:
    """E/APPLY_CONFLICT (reason ``no-op``) for a plan that changes nothing: never a success."""
    if planned.plan.is_noop:
        raise ApplyConflict(f"the {planned.what} changes nothing; no file was written",
                            details={"reason": "no-op"})


# -- planning ------------------------------------------------------------------------

async def prepare_rename(ctx: Context, session: Session) -> dict[str, Any]:
    """textDocument/prepareRename at the resolved target: ``{path, range, placeholder}``,
    or E/NOT_FOUND (reason ``prepare-rename-refused``) when the server refuses."""
    rel, pos = ctx.position()
    uri = await ctx.sync_target(session, rel)
    raw = await session.request(T.TEXT_DOCUMENT_PREPARE_RENAME, T.PrepareRenameParams(
        text_document=T.TextDocumentIdentifier(uri=uri), position=pos))
    if not raw or raw.get("defaultBehavior") is False:
        raise NotFound(f"{ctx.resolution.canonical if ctx.resolution else ''}: the server refuses to "
                       f"rename here (a builtin, a library or stdlib symbol, a keyword, or no symbol)",
                       details={"reason": "prepare-rename-refused", "path": rel,
                                "position": [pos.line, pos.character]})
    if "range" in raw:
        rng, placeholder = N.flat_range(raw["range"]), raw.get("placeholder")
    elif "start" in raw:
        rng, placeholder = N.flat_range(raw), None
    else:  # {defaultBehavior: true}: the word at the position
        sel = list(ctx.resolution.selection_range) if ctx.resolution else [pos.line, pos.character] * 2
        rng, placeholder = sel, None
    if placeholder is None:
        lines = ctx.engine.ws.read(rel).lines
        enc = ctx.engine.encoding
        a = codec.to_codepoints(lines[rng[0]], rng[1], enc)
        b = codec.to_codepoints(lines[rng[2]], rng[3], enc) if rng[2] == rng[0] else len(lines[rng[0]])
        placeholder = lines[rng[0]][a:b]
    return {"path": rel, "range": rng, "placeholder": placeholder}


async def plan_rename(ctx: Context, session: Session, new_name: str, prepared: Mapping[str, Any], *,
                      label: str | None = None) -> Planned:
    """textDocument/rename to ``new_name`` (a checked identifier) at the resolved target,
    after :func:`prepare_rename` answered ``prepared``; the edit refused if it reaches
    outside the workspace, then planned (not checked for no-op: :func:`refuse_noop`)."""
    rel, pos = ctx.position()
    raw = await session.request(T.TEXT_DOCUMENT_RENAME, T.RenameParams(
        text_document=T.TextDocumentIdentifier(uri=session.uri(rel)), position=pos, new_name=new_name))
    if not raw:
        raise NotFound(f"the server proposes no rename at {rel}:{pos.line + 1}:{pos.character + 1}",
                       details={"reason": "no-edit"})
    refuse_outside(ctx, raw)
    old = prepared["placeholder"]
    plan = plan_from_workspace_edit(ctx.engine.ws, raw, encoding=ctx.engine.encoding,
                                    label=label or f"rename {old} -> {new_name}")
    return Planned(raw, plan, f"rename of {old!r} to {new_name!r}")


def plan_edit(ctx: Context, text: str, *, label: str | None = None) -> Planned:
    """Replace what the selector resolved to with ``text``, re-indented to the target
    (:func:`replacement_edit`); not checked for no-op (:func:`refuse_noop`)."""
    res = ctx.resolution or ctx.resolve()
    src = ctx.engine.ws.read(res.path)
    te = replacement_edit(src.lines, list(res.range), text, ctx.engine.encoding, src.newline)
    raw = {"changes": {res.path: [te]}}
    plan = plan_from_workspace_edit(ctx.engine.ws, raw, encoding=ctx.engine.encoding,
                                    label=label or f"edit {res.canonical}")
    return Planned(raw, plan, f"edit of {res.canonical}")
