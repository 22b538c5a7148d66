"""Run a trajectory of steps against ONE warm server and score every step (CONTRACT.md section 5).

For each step the runner builds an edit plan (``patch``, ``write``, ``rename``,
``edit``) or runs a query, applies the plan through the safety envelope
(:func:`lanser.edits.apply_plan` with the global safety options), tells the
session which files changed (``sync``: the new text stays open in the server,
so the next pull sees it; deletions are closed and notified), then pulls the
diagnostics (pull = answered once analysis is done, no sleeping) of the files
the step can affect (:mod:`lanser.rewards.affected`: the changed files and
everything importing them; everything when unsure), keeps every other file's
diagnostics from the previous pull, and builds the step's record with
:func:`lanser.rewards.records.build_record`.

A step that fails leaves the workspace as it was (plans are applied all or
nothing, and a failing plan is never applied): its record has
``status: "error"``, the contract's exit code, the error object and S = 0,
and the run goes on.  ``reset`` puts every file the run touched back to its
bytes at the start of the run.

``in_memory``: plans are built and checked against an overlay of the disk
(:class:`OverlayWorkspace`) and only sent to the server as document versions;
nothing is ever written.  A deleted file is sent as an empty document and its
diagnostics dropped (the server cannot be told a file on disk is gone).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lsprotocol import types as T

from ..bundles import normalize as N
from ..bundles.canonical import HASHING, with_id
from ..bundles.paths import portable_path
from ..edits import apply_plan, check_new_name, edits_section, plan_from_unified_diff, \
    plan_from_workspace_edit, plan_write
from ..edits import checks as edit_checks
from ..edits.plan import Draft, EditPlan, FileChange, make_plan
from ..edits.gitstate import git_state
from ..edits.transaction import ApplyResult, _commit, _locked
from ..engine import BUNDLE_VERSION, Context, Engine, Request
from ..errors import ApplyConflict, FsPermissions, InternalError, LanserError, NotFound, UnsupportedCap
from ..selectors.resolution import Resolution
from ..server.session import Session
from ..workspace import SourceFile, Workspace, decode_source
from .affected import FileImports, ImportGraph, affected_files, analyze
from .formula import AGGREGATES, DEFAULT_WEIGHTS, Weights, check_clip, check_diag_term
from .interface import Interface
from .records import aggregate, build_record
from .stdlib import checks_import_cycles, python_version, stdlib_names, typeshed_dir
from .steps import SEPARATOR, BadLine, Step

SEVERITY_NAMES: tuple[str, ...] = ("error", "warning", "information")
SCOPES: tuple[str, ...] = ("workspace", "touched")
Record = dict[str, Any]


@dataclass(frozen=True)
class RewardOptions:
    """How steps are scored and applied (the ``reward`` command's own options)."""

    severities: tuple[str, ...] = ("error",)
    scope: str = "workspace"
    diag_term: str = "delta"
    weights: Weights = DEFAULT_WEIGHTS
    clip: float | None = None
    aggregate: str | None = None
    in_memory: bool = False
    reset_between: bool = False

    def __post_init__(self) -> None:
        if not self.severities:
            raise ValueError("at least one severity must be counted")
        for s in self.severities:
            if s not in SEVERITY_NAMES:
                raise ValueError(f"unknown severity {s!r}; use one of {', '.join(SEVERITY_NAMES)}")
        object.__setattr__(self, "severities", tuple(sorted(set(self.severities), key=SEVERITY_NAMES.index)))
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; use one of {', '.join(SCOPES)}")
        check_diag_term(self.diag_term)
        check_clip(self.clip)
        if self.aggregate is not None and self.aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; use one of {', '.join(AGGREGATES)}")

    def to_json(self) -> dict[str, Any]:
        """What goes into every step bundle (so a different scoring gives a different bundleId)."""
        return {"severities": list(self.severities), "scope": self.scope, "diagTerm": self.diag_term,
                "weights": self.weights.to_json(), "clip": self.clip, "aggregate": self.aggregate,
                "inMemory": self.in_memory}


# -- the in-memory overlay -----------------------------------------------------------

class _OverlayPath:
    """Just enough of ``Path`` for :class:`Draft` and the checks to read an overlaid file."""

    def __init__(self, real: Path, data: bytes | None) -> None:
        self._real = real
        self._data = data

    def is_dir(self) -> bool:
        return False

    def is_file(self) -> bool:
        return self._data is not None

    def exists(self) -> bool:
        return self._data is not None

    def read_bytes(self) -> bytes:
        if self._data is None:
            raise FileNotFoundError(str(self._real))
        return self._data

    def stat(self) -> os.stat_result:
        if self._data is None:
            raise FileNotFoundError(str(self._real))
        return self._real.stat()  # FileNotFoundError for a file that exists only in memory

    def __fspath__(self) -> str:
        return str(self._real)


class OverlayWorkspace(Workspace):
    """The workspace as the in-memory steps left it: disk files, overridden by ``overlay``
    (rel -> bytes, None = deleted).  Reads go through the overlay; nothing writes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        self.overlay: dict[str, bytes | None] = {}

    def abspath(self, rel: str) -> Path:
        if rel in self.overlay:
            return _OverlayPath(super().abspath(rel), self.overlay[rel])  # type: ignore[return-value]
        return super().abspath(rel)

    def read(self, user_path: str) -> SourceFile:
        real, rel = self.resolve(user_path, must_exist=False)
        if rel in self.overlay:
            data = self.overlay[rel]
            if data is None:
                raise NotFound(f"no such file in the workspace: {user_path} (deleted by an earlier step)")
            return decode_source(data, rel)
        return super().read(user_path)

    def python_files(self) -> list[str]:
        files = set(super().python_files())
        for rel, data in self.overlay.items():
            if rel.endswith((".py", ".pyi")):
                (files.add if data is not None else files.discard)(rel)
        return sorted(files)


# -- the runner ---------------------------------------------------------------------

@dataclass
class _Outcome:
    """What one step did, before it becomes a record."""

    status: str = "ok"
    error: LanserError | None = None
    plan: EditPlan | None = None
    result: ApplyResult | None = None
    resolution: Resolution | None = None
    query: dict[str, Any] | None = None
    changed: bool = False
    prepare_rename: bool | None = None


@dataclass
class _State:
    diags: list[dict[str, Any]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    by_file: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # raw, per pulled file


class TrajectoryRunner:
    """Scores steps one by one against one warm session of ``engine``.

    Call :meth:`start` once (starts the server, pulls the initial diagnostics),
    then :meth:`run_step` / :meth:`run`; :meth:`restore` puts the base back.
    The engine's options supply the safety envelope (``allow_dirty``,
    ``deny_apply_on_ambiguous``, ``allow``, ``deny``).
    """

    def __init__(self, engine: Engine, options: RewardOptions | None = None) -> None:
        self.engine = engine
        self.options = options or RewardOptions()
        self.base: dict[str, tuple[bytes | None, int | None]] = {}  # rel -> bytes/mode at the start
        self.state = _State()
        self.started = False
        self.step_no = 0
        self._allow_dirty = engine.options.allow_dirty
        # Told every step's bundle as it is built (batch prints them; --trace-file records them).
        self.on_bundle: Callable[[dict[str, Any]], Any] | None = None
        self.pending: dict[str, str] = {}  # rel -> created|changed|deleted since the last pull
        self.last_pulled: list[str] | None = None  # files the last pull asked for (None: all)
        self._files: set[str] = set()  # the files the last pull covered
        self._before: dict[str, bytes | None] = {}  # changed file -> its bytes at the last pull
        # rel -> (text, imports, interface): what the last pull's graph was built from
        self._facts: dict[str, tuple[str, FileImports | None, Interface | None]] = {}
        self._stdlib_names: frozenset[str] | None = None
        self._cycles = False  # the configuration mentions reportImportCycles
        self._restarts = -1

    @property
    def ws(self) -> Workspace:
        return self.engine.ws

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        if self.started:
            return
        if self.options.in_memory and not isinstance(self.engine.ws, OverlayWorkspace):
            if self.engine.session is not None:
                raise InternalError("in-memory rewards need the overlay before the server starts")
            self.engine.ws = OverlayWorkspace(self.engine.ws.root)
        await self.engine.server()
        if not self.options.in_memory:
            # The tree may be dirty from our own steps later; only a tree dirty before
            # the run is the user's business (--allow-dirty).
            self._allow_dirty = self._allow_dirty or not git_state(self.ws).get("dirty", False)
        self.state = await self._pull()
        self.started = True

    @property
    def diagnostics(self) -> list[dict[str, Any]]:
        """The workspace's current normalized diagnostics (every severity)."""
        return list(self.state.diags)

    # -- diagnostics ---------------------------------------------------------
    async def _pull(self) -> _State:
        """The diagnostics now: the files the pending changes can affect are pulled (all of
        them at the start, after a server restart or when the rule is unsure); every
        other file keeps its diagnostics from the previous pull (see rewards/affected.py)."""
        session = await self.engine.server()
        files = self._open_all(session)
        pending, self.pending = self.pending, {}
        before, self._before = self._before, {}
        # Files that came or went by other means than our steps count as created/deleted.
        for rel in set(files) - self._files - set(pending):
            pending[rel] = "created"
        for rel in self._files - set(files) - set(pending):
            pending[rel] = "deleted"
        prev = self.state
        targets = self._targets(session, files, pending, before)
        self.last_pulled = sorted(targets) if targets is not None else None
        self._files = set(files)
        if targets is None:
            # Parse every file for the rule while the server checks them (another core).
            texts = {rel: session.docs[rel].text for rel in files if rel in session.docs}
            parsing = asyncio.get_running_loop().run_in_executor(None, self._analyze_all, texts)
            try:
                by_file = await session.diagnostics(files)
            finally:
                await parsing
            self._restarts = session.restarts
        else:
            present = set(files)
            by_file = {p: d for p, d in prev.by_file.items() if p in present and p not in targets}
            by_file.update(await session.diagnostics(sorted(targets)))
        items = N.diagnostics(by_file)
        fresh = set(pending) | (set(targets) if targets is not None else set(files))
        texts: dict[str, str] = {}
        for path in sorted({d["path"] for d in items}):
            if path in prev.texts and path not in fresh and targets is not None:
                texts[path] = prev.texts[path]
                continue
            try:
                texts[path] = self.ws.read(path).text
            except LanserError:
                pass
        return _State(items, texts, by_file)

    def _targets(self, session: Session, files: list[str], pending: dict[str, str],
                 before: dict[str, bytes | None]) -> frozenset[str] | None:
        """The files to pull, or None for all of them."""
        if not self.started or session.restarts != self._restarts:
            return None
        old = {rel: self._interface_before(rel, before.get(rel)) for rel, kind in pending.items()
               if kind == "changed"}
        graph, interfaces = self._graph(session, files, self._stdlib(session))
        targets = affected_files(graph, pending, previous_files=self._files, interfaces=interfaces, before=old)
        if targets and (self._cycles or any(i is not None and any("reportImportCycles" in d for d in i.directives)
                                            for i in interfaces.values())):
            targets = None  # import-cycle diagnostics depend on files a file does not name
        if targets is None:
            self._stdlib_names = None
        return targets

    def _analyze_all(self, texts: dict[str, str]) -> None:
        """Fill the parse cache for ``texts`` (in a worker thread: pure parsing, one dict
        entry per file)."""
        for rel, text in texts.items():
            cached = self._facts.get(rel)
            if cached is None or cached[0] != text:
                self._facts[rel] = (text, *analyze(rel, text))

    def _interface_before(self, rel: str, data: bytes | None) -> Interface | None:
        """The interface of ``rel`` as the last pull saw it (from the cache when it has it)."""
        if data is None:
            return None
        try:
            text = decode_source(data, rel).text
        except LanserError:
            return None
        cached = self._facts.get(rel)
        if cached is not None and cached[0] == text:
            return cached[2]
        return analyze(rel, text)[1]

    def _graph(self, session: Session, files: list[str],
               stdlib: frozenset[str]) -> tuple[ImportGraph, dict[str, Interface | None]]:
        """The import graph and interfaces of ``files``, re-parsing only changed texts."""
        imports: dict[str, FileImports | None] = {}
        interfaces: dict[str, Interface | None] = {}
        for rel in files:
            doc = session.docs.get(rel)
            if doc is not None:
                text: str | None = doc.text
            else:
                try:
                    text = self.ws.read(rel).text
                except LanserError:
                    text = None
            cached = self._facts.get(rel)
            if text is None:
                imports[rel], interfaces[rel] = None, None
                continue
            if cached is None or cached[0] != text:
                cached = self._facts[rel] = (text, *analyze(rel, text))
            imports[rel], interfaces[rel] = cached[1], cached[2]
        for rel in set(self._facts) - set(files):
            del self._facts[rel]
        return ImportGraph(imports, stdlib), interfaces

    def _stdlib(self, session: Session) -> frozenset[str]:
        """The standard-library names of the pinned server's typeshed for the analysed
        Python, and whether import cycles are checked (both read again after a
        configuration change)."""
        if self._stdlib_names is None:
            version = python_version(self.ws.root, session.python.full_version)
            self._stdlib_names = stdlib_names(typeshed_dir(session.spec.name), version)
            self._cycles = checks_import_cycles(self.ws.root)
        return self._stdlib_names

    def _open_all(self, session: Session) -> list[str]:
        """Every Python file the server may check is kept open: the server re-checks open
        files when a file they import changes (a closed file's pulled diagnostics can be stale).
        Returns those files (less the ones an in-memory step deleted)."""
        files = session.candidate_files()
        for rel in files:
            if rel in session.docs or not rel.endswith((".py", ".pyi")):
                continue
            try:
                session.sync(rel, self.ws.read(rel).text)
            except LanserError:
                continue  # undecodable or vanished: the server reads it from disk
        if isinstance(self.ws, OverlayWorkspace):
            files = [p for p in files if self.ws.overlay.get(p, b"") is not None]
        return files

    def _sync(self, changes: Iterable[FileChange]) -> None:
        """Tell the session what changed: open/update Python files in memory, notify the disk."""
        session = self.engine.session
        assert session is not None
        events: dict[str, str] = {}
        changes = list(changes)
        for c in changes:
            kind = "deleted" if c.after is None else "created" if c.before is None else "changed"
            if c.path not in self.pending and kind == "changed" and c.path.endswith((".py", ".pyi")):
                self._before[c.path] = c.before  # the text as the previous pull saw it
            if self.pending.get(c.path, "changed") == "changed" or kind != "changed":
                self.pending[c.path] = kind
        for c in changes:
            is_py = c.path.endswith((".py", ".pyi"))
            if c.after is None:
                events[c.path] = "deleted"
                if self.options.in_memory and is_py:
                    session.sync(c.path, "")
                else:
                    session.close(c.path)
                continue
            events[c.path] = "created" if c.before is None else "changed"
            if is_py:
                try:
                    text = decode_source(c.after, c.path).text
                except LanserError:
                    text = c.after.decode("utf-8", errors="replace")
                session.sync(c.path, text)
        if not self.options.in_memory:
            session.notify_disk_changes(events)

    # -- applying ----------------------------------------------------------------
    def _remember(self, plan: EditPlan) -> None:
        for c in plan.changes:
            if c.path not in self.base:
                self.base[c.path] = (c.before, c.before_mode)

    def _apply(self, plan: EditPlan, res: Resolution | None) -> ApplyResult:
        opts = self.engine.options
        conf = res.confidence if res is not None else None
        tau = res.scoring.tau if res is not None and res.scoring is not None else None
        if not self.options.in_memory:
            result = apply_plan(self.ws, plan, allow_dirty=self._allow_dirty, allow=opts.allow,
                                deny=opts.deny, confidence=conf, tau=tau,
                                deny_apply_on_ambiguous=opts.deny_apply_on_ambiguous)
            if result.applied:
                self._remember(plan)
            return result
        ws = self.ws
        assert isinstance(ws, OverlayWorkspace)
        if plan.is_noop:
            return ApplyResult(False, "the plan changes nothing", plan=plan, via="in-memory")
        edit_checks.check_confidence(conf, tau, opts.deny_apply_on_ambiguous)
        edit_checks.run_checks(ws, plan, allow=opts.allow, deny=opts.deny)
        self._remember(plan)
        for c in plan.changes:
            ws.overlay[c.path] = c.after
        return ApplyResult(True, f"applied in memory: {len(plan.changes)} file(s)",
                           files=tuple(plan.paths), plan=plan, via="in-memory")

    async def restore(self) -> list[str]:
        """Put every file the run touched back to its bytes at the start; returns the paths."""
        if not self.base:
            return []
        if self.options.in_memory:
            ws = self.ws
            assert isinstance(ws, OverlayWorkspace)
            changes = [FileChange(rel, ws.overlay.get(rel), data) for rel, (data, _) in sorted(self.base.items())]
            ws.overlay.clear()
        else:
            draft = Draft(self.ws)
            for rel, (data, mode) in sorted(self.base.items()):
                draft.set(rel, data, mode)
            plan = make_plan(draft.changes(), label="reset")
            if not plan.is_noop:
                # Not apply_plan: restoring the user's own bytes must not be refused by the
                # syntax check (a file that did not parse at the start) or the dirty-tree check.
                edit_checks.check_jail(self.ws, plan)
                with _locked(self.ws):
                    _commit(self.ws, plan)
                self._remove_created_dirs(plan)
            changes = list(plan.changes)
        self.base.clear()
        self._sync(changes)
        return [c.path for c in changes]

    def _remove_created_dirs(self, plan: EditPlan) -> None:
        """Directories a step created for a new file, now empty again, are removed."""
        for c in plan.changes:
            if c.after is not None:
                continue
            parent = (self.ws.root / c.path).parent
            while parent != self.ws.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    # -- plans ----------------------------------------------------------------
    def _context(self, step: Step) -> Context:
        return Context(self.engine, Request(step.op, step.selector, {}))

    async def _plan(self, step: Step, out: _Outcome) -> EditPlan:
        ws = self.ws
        raw = step.raw
        label = f"{step.op} {step.id}" if step.id is not None else step.op
        if step.op == "patch":
            return plan_from_unified_diff(ws, raw["patch"], label=label)
        if step.op == "write":
            return plan_write(ws, raw["path"], raw["content"], label=label)
        if step.op == "edit":
            return self._plan_edit(step, out, label)
        if step.op == "rename":
            return await self._plan_rename(step, out, label)
        raise InternalError(f"op {step.op!r} has no plan")

    def _plan_edit(self, step: Step, out: _Outcome, label: str) -> EditPlan:
        """Same semantics as ``lanser edit``: the selector's range replaced, re-indented."""
        from ..mutations import replacement_edit  # the edit command's own TextEdit builder

        ctx = self._context(step)
        res = out.resolution = ctx.resolve()
        src = self.ws.read(res.path)
        te = replacement_edit(list(src.lines), list(res.range), step.raw["text"], res.encoding, src.newline)
        plan = plan_from_workspace_edit(self.ws, {"changes": {res.path: [te]}}, encoding=res.encoding,
                                        label=label)
        if plan.is_noop:
            raise ApplyConflict(f"the edit of {res.canonical} changes nothing", details={"reason": "no-op"})
        return plan

    async def _plan_rename(self, step: Step, out: _Outcome, label: str) -> EditPlan:
        new_name = check_new_name(step.raw["newName"])
        ctx = self._context(step)
        out.resolution = ctx.resolve()
        session = await self.engine.server()
        caps = session.info.capabilities if session.info else {}
        if not caps.get("renameProvider"):
            raise UnsupportedCap(f"{session.spec.name} does not offer renameProvider (needed by rename)")
        rel, pos = ctx.position()
        uri = await ctx.sync_target(session, rel)
        doc = T.TextDocumentIdentifier(uri=uri)
        prep = await session.request(T.TEXT_DOCUMENT_PREPARE_RENAME,
                                     T.PrepareRenameParams(text_document=doc, position=pos))
        out.prepare_rename = bool(prep) and not (isinstance(prep, dict) and prep.get("defaultBehavior") is False)
        if not out.prepare_rename:
            raise NotFound(f"prepare-rename refused at {rel}:{pos.line + 1}:{pos.character + 1}: "
                           f"nothing renameable there", details={"reason": "prepare-rename"})
        edit = await session.request(T.TEXT_DOCUMENT_RENAME,
                                     T.RenameParams(text_document=doc, position=pos, new_name=new_name))
        if not edit:
            raise NotFound(f"the server returned no rename edit at {rel}:{pos.line + 1}:{pos.character + 1}")
        from ..mutations import outside_paths

        outside = outside_paths(edit, self.ws)
        if outside:
            raise FsPermissions(f"the server's edit reaches outside the workspace ({', '.join(outside)}); "
                                f"refused", details={"reason": "outside-workspace", "paths": outside})
        plan = plan_from_workspace_edit(self.ws, edit, encoding=self.engine.encoding, label=label)
        if plan.is_noop:
            raise ApplyConflict(f"the rename to {new_name!r} changes nothing", details={"reason": "no-op"})
        return plan

    # -- steps ----------------------------------------------------------------
    async def _mutate(self, step: Step) -> _Outcome:
        out = _Outcome()
        try:
            plan = out.plan = await self._plan(step, out)
            out.result = self._apply(plan, out.resolution)
            out.changed = out.result.applied
        except LanserError as exc:
            out.status, out.error = "error", exc
        except Exception as exc:  # internal failure of one step: exit 1 for that step, run goes on
            out.status, out.error = "error", InternalError(f"internal error: {type(exc).__name__}: {exc}")
        if out.changed and out.plan is not None:
            self._sync(out.plan.changes)
        return out

    async def _query(self, step: Step) -> _Outcome:
        bundle = await self.engine.run(step.raw["cmd"], step.selector, {})
        out = _Outcome(query=bundle)
        if bundle.get("status") == "error":
            out.status = "error"
            out.error = _Reported(bundle.get("error") or {})
        return out

    async def run_step(self, item: Step | BadLine) -> Record:
        """Run one step (or report one bad line) and return its record."""
        if not self.started:
            await self.start()
        self.step_no += 1
        n = self.step_no
        before = self.state
        if isinstance(item, BadLine):
            out = _Outcome(status="error", error=item.error)
            return self._record(n, item, out, before, before)
        if item.op == "reset":
            await self.restore()
            out = _Outcome(changed=True)
        elif item.op == "query":
            out = await self._query(item)
        else:
            out = await self._mutate(item)
        after = await self._pull() if out.changed else before
        self.state = after
        return self._record(n, item, out, before, after)

    def _record(self, n: int, item: Step | BadLine, out: _Outcome, before: _State, after: _State) -> Record:
        opts = self.options
        op = item.op or "invalid"
        res = out.resolution
        if res is None and out.query is not None:
            res_json = ((out.query.get("resolution") or {}).get("resolved") or {})
            conf = float(res_json.get("confidence", 1.0)) if res_json else 1.0
        else:
            conf = res.confidence if res is not None else 1.0
        scope = None
        if opts.scope == "touched":
            scope = out.plan.paths if out.plan is not None and out.changed else []
        err = out.error.to_json() if out.error is not None else None
        exit_code = out.error.exit_code if out.error is not None else 0
        safety = 1 if out.status == "ok" and out.prepare_rename is not False else 0
        record = build_record(
            step=n, op=op, before=before.diags, after=after.diags if out.status == "ok" else None,
            texts_before=before.texts, texts_after=after.texts, step_id=item.id, status=out.status,
            exit_code=exit_code, error=err, safety=safety, alpha_conf=min(1.0, max(0.0, conf)),
            weights=opts.weights, clip=opts.clip, diag_term_mode=opts.diag_term,
            severities=opts.severities, scope_paths=scope, encoding=self.engine.encoding)
        bundle = self._bundle(n, item, out, after if out.status == "ok" else before, record)
        record["bundleId"] = bundle["bundleId"]
        if self.on_bundle is not None:
            self.on_bundle(bundle)
        return record

    def _bundle(self, n: int, item: Step | BadLine, out: _Outcome, state: _State,
                record: Record) -> dict[str, Any]:
        """The step's analysis bundle: the step, its diagnostics, edits and processReward."""
        eng = self.engine
        raw = item.raw if isinstance(item, Step) else (item.raw if isinstance(item.raw, dict) else None)
        facts: dict[str, Any] = {"diagnostics": state.diags,
                                 "counts": N.count_diagnostics(state.diags),
                                 "scope": {"kind": self.options.scope}, "provenance": "lsp"}
        if out.query is not None:
            facts["query"] = {"bundleId": out.query.get("bundleId"), "facts": out.query.get("facts")}
        edits = None
        if out.plan is not None:
            edits = edits_section(out.plan, out.result)
            edits["workspaceEdit"] = _portable_uris(edits.get("workspaceEdit"), eng.ws.root)
        err = out.error.to_json() if out.error is not None else None
        return with_id({
            "version": BUNDLE_VERSION,
            "status": out.status,
            "request": {"cmd": "reward", "selector": None,
                        "args": {"step": n, "line": item.line, "op": item.op, "input": raw,
                                 "options": self.options.to_json()}},
            "resolution": out.resolution.to_json() if out.resolution is not None else None,
            "facts": facts,
            "edits": edits,
            "processReward": record["processReward"],
            "environment": eng.environment(),
            "capabilities": eng.capabilities(),
            "error": err,
            "meta": {"exit_code": record["exitCode"], "sorting_keys": list(N.SORTING_KEYS),
                     "hashing": dict(HASHING), "truncated": False, "cursor": None},
        })

    # -- whole runs -------------------------------------------------------------
    async def run(self, items: Sequence[Step | BadLine | str],
                  emit: Callable[[Record], Any] | None = None,
                  on_step: Callable[[Record], Any] | None = None) -> list[Record]:
        """Run every item in order; ``SEPARATOR`` (a blank line with --reset-between) restores
        the base silently.  Records go to ``emit`` as soon as they are final: per step, or per
        trajectory when aggregating.  Returns every record."""
        out: list[Record] = []
        pending: list[Record] = []

        def flush() -> None:
            if not pending:
                return
            final = aggregate(pending, self.options.aggregate) if self.options.aggregate else list(pending)
            pending.clear()
            for rec in final:
                out.append(rec)
                if emit is not None:
                    emit(rec)

        for item in items:
            if item == SEPARATOR:
                flush()
                await self.silent_reset()
                continue
            assert not isinstance(item, str)
            rec = await self.run_step(item)
            if on_step is not None:
                on_step(rec)
            if isinstance(item, Step) and item.op == "reset":
                flush()
                out.append(rec)
                if emit is not None:
                    emit(rec)
                continue
            pending.append(rec)
            if not self.options.aggregate:
                flush()
        flush()
        if self.options.reset_between:
            await self.silent_reset()
        return out

    async def silent_reset(self) -> None:
        """Restore the base without a record (between trajectories)."""
        if self.base:
            await self.restore()
            self.state = await self._pull()


class _Reported(LanserError):
    """An error another bundle already reported (a failed query): same code and exit code."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "")), details=dict(error.get("details") or {}))
        self.code = str(error.get("code", "E/INTERNAL"))
        self.exit_code = int(error.get("exitCode", 1))
        self.retryable = error.get("retryable", False)


def _portable_uris(node: Any, root: Path) -> Any:
    """A WorkspaceEdit with every ``file://`` URI (dict keys included) made workspace-relative:
    bundles carry no absolute paths, so the same steps in two checkouts hash the same."""
    if isinstance(node, str):
        return portable_path(node, root) if node.startswith("file:") else node
    if isinstance(node, list):
        return [_portable_uris(v, root) for v in node]
    if isinstance(node, dict):
        return {(_portable_uris(k, root) if isinstance(k, str) else k): _portable_uris(v, root)
                for k, v in node.items()}
    return node


async def run_trajectory(engine: Engine, items: Sequence[Step | BadLine | str],
                         options: RewardOptions | None = None,
                         emit: Callable[[Record], Any] | None = None) -> list[Record]:
    """Start a runner on ``engine``, run ``items``, return the records (the engine stays open)."""
    runner = TrajectoryRunner(engine, options)
    await runner.start()
    return await runner.run(items, emit)


__all__ = ["OverlayWorkspace", "RewardOptions", "TrajectoryRunner", "run_trajectory", "SCOPES",
           "SEVERITY_NAMES"]
