"""Engine handlers for the mutating commands: prepare-rename, rename, actions, edit.

Every mutation has the same shape (paper, Algorithm 2 "PreviewThenApply"):
resolve the selector, ask the server for an edit, turn it into an immutable
:class:`~lanser.edits.EditPlan`, check it, and only with ``--apply`` write it
through :func:`~lanser.edits.apply_plan` (jail, globs, clean git tree,
atomic).  A dry run writes no byte: it shows the plan to the server as
in-memory document versions, pulls the workspace diagnostics, and restores
the originals, so the bundle predicts what the edit would do to the error
count (``facts.predictedDiagnostics``) and carries the step's process reward.

Decisions (README, "Safe mutations"):

- prepare-rename refused by the server (builtin, library symbol, keyword, no
  symbol): E/NOT_FOUND (3): the server can rename, but there is nothing
  renameable there.  A server without ``renameProvider``: E/UNSUPPORTED_CAP.
- an edit that changes nothing: E/APPLY_CONFLICT (70), reason ``no-op``,
  ``edits.applied`` false; never a success.
- any edit the server proposes outside the workspace: E/FS_PERMISSIONS (71)
  before a plan exists, so nothing can be written.
- ``--strict`` with unrenamed candidates: E/APPLY_CONFLICT (70), reason
  ``unrenamed-candidates``, in dry runs too (the dry run says what apply would do).
- unrenamed candidates are code names (tokenize NAME tokens) and whole-word
  matches inside string literals; comments are skipped.
- comments (and pragmas such as ``# noqa``, ``# type: ignore``) the edit removes
  outside the range it claims to change (lanser.edits.comments): listed in
  ``edits.removedComments`` and warned about in the summary; the edit is then
  not "safe" (S = 0 in its processReward), and ``--strict`` refuses it
  (E/APPLY_CONFLICT, reason ``removes-comments``), in dry runs too.  A rename
  and organize-imports claim no comments; ``edit`` and other code actions
  claim the selector's lines.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence

from lsprotocol import types as T
from lsprotocol.converters import get_converter

from .. import codec
from ..bundles import normalize as N
from ..bundles.paths import portable_path
from ..diagnostics.workspace import WorkspaceDiagnostics
from ..edits import (
    EditPlan,
    apply_plan,
    check_new_name,
    claimed_lines,
    edits_section,
    plan_from_workspace_edit,
    recover,
    removes_comments,
)
from ..edits.checks import check_globs, run_checks
from ..edits.comments import ClaimedLines, RemovedComment
from ..edits.gitstate import check_clean
from ..errors import ApplyConflict, BadInput, LanserError, NotFound, UnsupportedCap
from ..rewards.formula import process_reward
from ..selectors.resolution import TAU
from ..server.session import Session
from ..workspace import Workspace, decode_source
from .planner import (
    Planned,
    overlaps,
    plan_edit,
    plan_rename,
    portable_workspace_edit,
    prepare_rename,
    refuse_noop,
    refuse_outside,
    require,
)

if TYPE_CHECKING:
    from .context import Context, Request

Handler = Callable[["Request", "Context"], Awaitable[Any]]
ORGANIZE_IMPORTS_COMMAND = "pyright.organizeimports"
_CONVERTER = get_converter()


def mutation_handlers() -> dict[str, Handler]:
    """The handlers this module adds to ``Engine.handlers``."""
    return {"prepare-rename": _prepare_rename, "rename": _rename, "actions": _actions, "edit": _edit}


# -- pure helpers ------------------------------------------------------------------

def edited_spans(edit: Mapping[str, Any], root: Path) -> dict[str, list[list[int]]]:
    """Workspace-relative path -> flat ranges the edit rewrites (server encoding)."""
    spans: dict[str, list[list[int]]] = {}
    for op in edit.get("documentChanges") or []:
        if "textDocument" in op:
            rel = portable_path(op["textDocument"]["uri"], root) if op["textDocument"]["uri"].startswith(
                "file:") else op["textDocument"]["uri"]
            spans.setdefault(rel, []).extend(N.flat_range(e["range"]) for e in op.get("edits") or [])
    for uri, es in (edit.get("changes") or {}).items():
        rel = portable_path(uri, root) if uri.startswith("file:") else uri
        spans.setdefault(rel, []).extend(N.flat_range(e["range"]) for e in es or [])
    return spans


def name_occurrences(text: str, name: str) -> list[tuple[int, int, str]]:
    """(0-based line, code-point column, kind) of every whole-word ``name`` in
    ``text``: ``code`` for NAME tokens, ``string`` inside string literals;
    comments are skipped.  Text that does not tokenize falls back to a plain
    whole-word search (kind ``text``)."""
    word = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")
    out: list[tuple[int, int, str]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME and tok.string == name:
                out.append((tok.start[0] - 1, tok.start[1], "code"))
            elif tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                for m in word.finditer(tok.string):
                    before = tok.string[: m.start()]
                    nl = before.count("\n")
                    col = (tok.start[1] + m.start()) if nl == 0 else len(before) - before.rfind("\n") - 1
                    out.append((tok.start[0] - 1 + nl, col, "string"))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        out = []
        for i, line in enumerate(text.split("\n")):
            out.extend((i, m.start(), "text") for m in word.finditer(line))
    return sorted(set(out))


def _inside(pos: tuple[int, int], rng: list[int]) -> bool:
    return (rng[0], rng[1]) <= pos < (rng[2], rng[3]) or pos == (rng[0], rng[1])


def unrenamed_candidates(ws: Workspace, name: str, spans: Mapping[str, list[list[int]]],
                         encoding: str) -> list[dict[str, Any]]:
    """Whole-word occurrences of ``name`` in the workspace's Python files that no
    edit covers: ``[{path, range, kind}]`` sorted, ranges in ``encoding``."""
    out = []
    for rel in ws.python_files():
        try:
            src = ws.read(rel)
        except LanserError:
            continue  # undecodable or unreadable: not a rename question
        if name not in src.text:
            continue
        lines = src.lines
        for line, cp, kind in name_occurrences(src.text, name):
            start = codec.from_codepoints(lines[line], cp, encoding)
            end = codec.from_codepoints(lines[line], cp + len(name), encoding)
            if any(_inside((line, start), r) for r in spans.get(rel, [])):
                continue
            out.append({"path": rel, "range": [line, start, line, end], "kind": kind})
    return N.sort_locations(out, "kind")


# -- server helpers -------------------------------------------------------------------

async def _start(ctx: Context, cmd: str, *, apply: bool = False, writes_target: bool = False,
                 ) -> tuple[Session, Any]:
    """Parse and resolve (structural: no server), refuse what can be refused before a plan
    exists, then start the server.  Refused early: a target file ``--allow``/``--deny``
    forbid (``writes_target``: the plan certainly writes the file the selector names, as a
    rename or an edit does), and a dirty or unreadable git tree before an apply (unless
    ``--allow-dirty``).  The jail and a bad selector are refused by the resolution itself.
    Resolution assumes the pinned servers' utf-16 and is redone if the server negotiated
    otherwise."""
    ctx.parse()
    res = ctx.resolve()
    opts = ctx.engine.options
    if writes_target:
        check_globs([res.path], opts.allow, opts.deny)
    if apply:
        check_clean(ctx.engine.ws, opts.allow_dirty)
    session = await ctx.engine.server()
    require(session, cmd)
    if res.encoding != ctx.engine.encoding:
        res = ctx.resolve()
    return session, res


async def _error_count(session: Session, created: list[str]) -> dict[str, Any]:
    diagnostics = WorkspaceDiagnostics(session)
    diagnostics.track(created=created)
    return (await diagnostics.pull_all()).counts()


async def _predict(session: Session, plan: EditPlan) -> dict[str, Any]:
    """Workspace diagnostic counts with the plan's texts as in-memory versions.

    Afterwards every document is synced back to what the server saw before (its
    open text, else the disk text), and stays open: pyright 1.1.407 answers
    pulls on files that import a just-*closed* document from a half-invalidated
    state (measured: 1 error instead of 3 in srcpkg), while a synced-back open
    document is consistent at once.  Only files the plan creates are closed.
    """
    previous: dict[str, str | None] = {}
    try:
        for c in plan.changes:
            if c.after is None:
                continue  # a deletion cannot be shown in memory; the file keeps counting
            if c.path in session.docs:
                previous[c.path] = session.docs[c.path].text
            else:
                previous[c.path] = decode_source(c.before, c.path).text if c.before is not None else None
            session.sync(c.path, decode_source(c.after, c.path).text)
        counts = await _error_count(session, [c.path for c in plan.changes if c.before is None])
    finally:
        for rel, text in previous.items():
            if text is None:
                session.close(rel)
            else:
                session.sync(rel, text)
    return counts


def _tell_server(session: Session, plan: EditPlan) -> None:
    """After an apply: open documents get their new text, and the server hears
    about every file changed on disk."""
    kinds: dict[str, str] = {}
    for c in plan.changes:
        kinds[c.path] = "created" if c.before is None else "deleted" if c.after is None else "changed"
        if c.path in session.docs:
            if c.after is None:
                session.close(c.path)
            else:
                session.sync(c.path, decode_source(c.after, c.path).text)
    session.notify_disk_changes(kinds)


def _comments_note(removed: Sequence[RemovedComment]) -> str:
    if not removed:
        return ""
    shown = "; ".join(r.describe() for r in removed[:5])
    more = f"; and {len(removed) - 5} more" if len(removed) > 5 else ""
    return (f"; WARNING: removes {len(removed)} comment(s) outside what it claims to change "
            f"(not safe; --strict refuses): {shown}{more}")


async def _finish(ctx: Context, session: Session, plan: EditPlan, raw_edit: Mapping[str, Any], *,
                  apply: bool, via_git: bool = False, what: str, extra: dict[str, Any] | None = None,
                  refuse: LanserError | None = None, claimed: ClaimedLines | None = None,
                  strict: bool = False) -> None:
    """Shared tail of every mutation: no-op refusal, preview, checks, removed comments,
    dry-run prediction or apply, server notification, diagnostics and process reward."""
    eng = ctx.engine
    opts = eng.options
    res = ctx.resolution
    confidence = float(res.confidence) if res else 1.0
    tau = res.scoring.tau if res and res.scoring else TAU
    section = edits_section(plan)
    section["workspaceEdit"] = portable_workspace_edit(raw_edit, eng.ws.root)
    section.update(extra or {})
    ctx.edits = section
    if plan.is_noop:
        section["result"] = {"applied": False, "message": f"the {what} changes nothing; no file was written",
                             "files": []}
        refuse_noop(Planned(raw_edit, plan, what))
    removed = removes_comments(plan, claimed)
    if removed:
        section["removedComments"] = [r.to_json() for r in removed]
        if strict and refuse is None:
            refuse = ApplyConflict(
                f"--strict: the {what} removes {len(removed)} comment(s) outside what it claims to change "
                f"({'; '.join(r.describe() for r in removed[:5])}){'; nothing written' if apply else ''}",
                details={"reason": "removes-comments", "count": len(removed)})
    before = await _error_count(session, [])
    try:
        if refuse is not None:
            raise refuse
        if apply:
            result = apply_plan(eng.ws, plan, allow_dirty=opts.allow_dirty, allow=opts.allow, deny=opts.deny,
                                via_git=via_git, confidence=confidence, tau=tau,
                                deny_apply_on_ambiguous=opts.deny_apply_on_ambiguous)
            if result.applied:
                eng.committed = True  # past the commit point: a Ctrl-C now waits for the report
            section.update(edits_section(result.plan or plan, result))
            section["workspaceEdit"] = portable_workspace_edit(raw_edit, eng.ws.root)
            section.update(extra or {})
            if result.applied:
                _tell_server(session, result.plan or plan)
            after = await _error_count(session, [c.path for c in (result.plan or plan).changes
                                                     if c.before is None])
            key = "observedDiagnostics"
        else:
            run_checks(eng.ws, plan, allow=opts.allow, deny=opts.deny)
            after = await _predict(session, plan)
            key = "predictedDiagnostics"
            note = _candidates_note(extra) + _comments_note(removed)
            section["result"] = {"applied": False, "files": [],
                                 "message": f"dry run: nothing written ({len(plan.changes)} file(s) would "
                                            f"change; pass --apply to write){note}"}
    except LanserError:
        ctx.process_reward = process_reward(diag_before=before["errors"], diag_after=before["errors"],
                                            safety=0, alpha_conf=confidence)
        raise
    if apply:
        section["result"]["message"] += _candidates_note(extra) + _comments_note(removed)
    facts = dict(ctx.facts or {})
    facts[key] = {"before": before, "after": after}
    facts.setdefault("provenance", "lsp")
    ctx.facts = facts
    # An edit that removes comments it did not claim to change is not safe (S = 0).
    ctx.process_reward = process_reward(diag_before=before["errors"], diag_after=after["errors"],
                                        safety=0 if removed else 1, alpha_conf=confidence)


def _candidates_note(extra: Mapping[str, Any] | None) -> str:
    cands = (extra or {}).get("unrenamedCandidates") or []
    if not cands:
        return ""
    shown = ", ".join(f"{c['path']}:{c['range'][0] + 1}:{c['range'][1] + 1}" for c in cands[:5])
    more = f" and {len(cands) - 5} more" if len(cands) > 5 else ""
    return (f"; WARNING: {len(cands)} unrenamed candidate occurrence(s) the server's edit does not "
            f"cover: {shown}{more}")


# -- handlers -----------------------------------------------------------------------------

async def _prepare_rename(req: Request, ctx: Context) -> None:
    session, _ = await _start(ctx, "prepare-rename")
    ctx.facts = {"prepareRename": await prepare_rename(ctx, session), "provenance": "lsp"}


async def _rename(req: Request, ctx: Context) -> None:
    new_name = check_new_name(str(req.args.get("newName", "")))
    apply = bool(req.args.get("apply"))
    if apply:
        recover(ctx.engine.ws)
    session, _ = await _start(ctx, "rename", apply=apply, writes_target=True)
    prep = await prepare_rename(ctx, session)
    ctx.facts = {"prepareRename": prep, "provenance": "lsp"}
    planned = await plan_rename(ctx, session, new_name, prep)
    plan, raw, old = planned.plan, planned.raw, prep["placeholder"]
    spans = edited_spans(raw, ctx.engine.ws.root)
    cands = unrenamed_candidates(ctx.engine.ws, old, spans, ctx.engine.encoding) if not plan.is_noop else []
    refuse = None
    if req.args.get("strict") and cands:
        refuse = ApplyConflict(f"--strict: {len(cands)} occurrence(s) of {old!r} are not covered by the "
                               f"server's rename{' (nothing written)' if apply else ''}",
                               details={"reason": "unrenamed-candidates", "count": len(cands)})
    await _finish(ctx, session, plan, raw, apply=apply, via_git=bool(req.args.get("viaGit")),
                  what=planned.what, extra={"oldName": old, "newName": new_name, "unrenamedCandidates": cands},
                  refuse=refuse, strict=bool(req.args.get("strict")))


async def _edit(req: Request, ctx: Context) -> None:
    text = req.args.get("text")
    if not isinstance(text, str):
        raise BadInput("edit needs --text or --from-file")
    apply = bool(req.args.get("apply"))
    if apply:
        recover(ctx.engine.ws)
    session, res = await _start(ctx, "edit", apply=apply, writes_target=True)
    planned = plan_edit(ctx, text)
    await _finish(ctx, session, planned.plan, planned.raw, apply=apply, what=planned.what,
                  claimed=claimed_lines(res.path, res.range), strict=bool(req.args.get("strict")))


def _action_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    command = raw.get("command")
    cmd_name = command.get("command") if isinstance(command, Mapping) else command if isinstance(
        command, str) else None
    return {"title": raw.get("title", ""), "kind": raw.get("kind"),
            "hasEdit": bool(raw.get("edit")), "command": cmd_name,
            "isPreferred": bool(raw.get("isPreferred", False)),
            "diagnostics": sorted(str(d.get("code")) for d in raw.get("diagnostics") or [])}


def _action_key(pair: tuple[dict[str, Any], Mapping[str, Any]]) -> tuple[str, str, str]:
    e = pair[0]
    return (e["kind"] or "", e["title"], e["command"] or "")


async def _actions(req: Request, ctx: Context) -> None:
    kind = req.args.get("kind")
    index = req.args.get("apply")
    if index is not None:
        recover(ctx.engine.ws)
    session, res = await _start(ctx, "actions", apply=index is not None)
    rel = res.path
    uri = await ctx.sync_target(session, rel)
    raw = await session.pull_diagnostics(rel) or []
    in_range = [d for d in raw if overlaps(N.flat_range(d["range"]), list(res.range))]
    params = _CONVERTER.structure({
        "textDocument": {"uri": uri},
        "range": {"start": {"line": res.range[0], "character": res.range[1]},
                  "end": {"line": res.range[2], "character": res.range[3]}},
        "context": {"diagnostics": in_range, **({"only": [kind]} if kind else {})}}, T.CodeActionParams)
    raw = await session.request(T.TEXT_DOCUMENT_CODE_ACTION, params) or []
    pairs = [(_action_entry(a), a) for a in raw if isinstance(a, Mapping)]
    commands = ((session.info.capabilities if session.info else {}).get("executeCommandProvider") or {}).get(
        "commands") or []
    wants_organize = kind is None or str(kind).startswith("source.organizeImports")
    # Pyright 1.1.407 lists no commands and offers no organize-imports code action,
    # but answers workspace/executeCommand pyright.organizeimports with the edit.
    can_organize = ORGANIZE_IMPORTS_COMMAND in commands or session.spec.name == "pyright"
    if wants_organize and can_organize and not any(
            (e["kind"] or "").startswith("source.organizeImports") for e, _ in pairs):
        synthetic = {"title": "Organize imports", "kind": "source.organizeImports",
                     "command": {"title": "Organize imports", "command": ORGANIZE_IMPORTS_COMMAND,
                                 "arguments": [uri]}, "lanser": "executeCommand-returns-edit"}
        entry = _action_entry(synthetic)
        entry["provider"] = "lanser"
        pairs.append((entry, synthetic))
    pairs.sort(key=_action_key)
    listing = [{"index": i, **e} for i, (e, _) in enumerate(pairs)]
    ctx.facts = {"actions": listing, "diagnostics": N.diagnostics({rel: in_range}),
                 "scope": {"path": rel, "range": list(res.range), "kind": "range", "only": kind}, "provenance": "lsp"}
    if index is None:
        return
    if not isinstance(index, int) or not 0 <= index < len(pairs):
        raise NotFound(f"no action with index {index}; {len(pairs)} action(s) are offered here",
                       details={"reason": "no-such-action", "count": len(pairs)})
    entry, action = pairs[index]
    edit = await _action_edit(session, action)
    refuse_outside(ctx, edit)
    plan = plan_from_workspace_edit(ctx.engine.ws, edit, encoding=ctx.engine.encoding,
                                    label=f"action {entry['title']}")
    # Organize-imports claims to reorder imports, not to change comments; another action
    # claims the lines of the range it was asked for.
    organize = (entry["kind"] or "").startswith("source.organizeImports")
    await _finish(ctx, session, plan, edit, apply=True, what=f"action {entry['title']!r}",
                  extra={"action": {"index": index, **entry}},
                  claimed=None if organize else claimed_lines(rel, list(res.range)),
                  strict=bool(req.args.get("strict")))


async def _action_edit(session: Session, action: Mapping[str, Any]) -> Mapping[str, Any]:
    """The WorkspaceEdit of an action: its own, or resolved, or (organize imports
    only) computed by the server's command, which edits nothing itself."""
    if action.get("edit"):
        return action["edit"]
    caps = session.info.capabilities if session.info else {}
    provider = caps.get("codeActionProvider")
    if "command" not in action and isinstance(provider, Mapping) and provider.get("resolveProvider"):
        resolved = await session.request(T.CODE_ACTION_RESOLVE, _CONVERTER.structure(dict(action), T.CodeAction))
        if resolved and resolved.get("edit"):
            return resolved["edit"]
    command = action.get("command")
    name = command.get("command") if isinstance(command, Mapping) else command
    if action.get("lanser") and name == ORGANIZE_IMPORTS_COMMAND and isinstance(command, Mapping):
        edit = await session.request(T.WORKSPACE_EXECUTE_COMMAND, T.ExecuteCommandParams(
            command=ORGANIZE_IMPORTS_COMMAND, arguments=list(command.get("arguments") or [])))
        if isinstance(edit, Mapping):
            return edit
        return {"changes": {}}
    raise UnsupportedCap(f"the action {action.get('title')!r} runs the server command {name!r}, which "
                         f"changes files on the server's side; lanser only applies edits it can check",
                         details={"reason": "command-action", "command": name})
