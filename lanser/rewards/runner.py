"""Run a trajectory of steps against ONE warm server and score every step (CONTRACT.md section 5).

For each step the runner builds an edit plan (``patch``, ``write``, ``rename``,
``edit``) or runs a query, applies the plan through the safety envelope
(:func:`lanser.edits.apply_plan` with the global safety options), tells the
session which files changed (the new text goes to the server as a document
version, so the next pull sees it), then pulls the diagnostics of the files
the step can affect (:class:`lanser.diagnostics.tracker.ChangeTracker`: the
changed files, the importers of what they export differently, everything
when unsure) and keeps every other checked file's diagnostics
(:class:`lanser.diagnostics.workspace.WorkspaceDiagnostics`, the one
definition of "the diagnostics of the workspace": the files ``pyright
--outputjson`` checks, nothing else).

A step that fails leaves the workspace as it was (plans are applied all or
nothing, and a failing plan is never applied): its record has
``status: "error"``, the contract's exit code, the error object and S = 0,
and the run goes on.  ``reset`` puts every file the run touched back to its
bytes at the start of the run.

``in_memory``: the server runs on a private mirror of the workspace
(:mod:`lanser.rewards.overlay`); plans are checked against the overlay and
changed files exist only as document versions; files a step creates or
deletes are created in or removed from the mirror, so imports resolve as they
would on disk.  The checkout is never written.

Records are small: ``diagnostics.byFile`` lists the files whose counts the
step changed (``by_file="all"``: every file with an error or a warning), and
the step bundle carries the diagnostics of the files the step changed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..bundles.paths import portable_path
from ..diagnostics.config import ConfigError, read_config
from ..diagnostics.fileset import FileSet
from ..diagnostics.lint import LintDiagnostics
from ..diagnostics.stdlib import python_version, stdlib_names, typeshed_dir
from ..diagnostics.tracker import ChangeTracker
from ..diagnostics.workspace import COUNTED, Diag, Snapshot, WorkspaceDiagnostics, file_counts
from ..edits import apply_plan, check_new_name, edits_section, plan_from_unified_diff, plan_write
from ..edits import checks as edit_checks
from ..edits.gitstate import git_state
from ..edits.plan import Draft, EditPlan, FileChange, make_plan
from ..edits.transaction import ApplyResult, restore_plan
from ..engine import Context, Engine, Request
from ..engine.planner import plan_edit, plan_rename, prepare_rename, refuse_noop, require
from ..errors import InternalError, LanserError
from ..selectors.resolution import Resolution
from ..workspace import decode_source
from .formula import AGGREGATES, DEFAULT_WEIGHTS, Weights, check_clip, check_diag_term
from .overlay import Mirror, OverlayWorkspace
from .records import aggregate, build_record
from .steps import SEPARATOR, BadLine, Step

SEVERITY_NAMES: tuple[str, ...] = ("error", "warning", "information")
SCOPES: tuple[str, ...] = ("workspace", "touched")
BY_FILE: tuple[str, ...] = ("changed", "all")
ANALYZERS: tuple[str, ...] = ("pyright", "ruff")
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
    by_file: str = "changed"
    analyzers: tuple[str, ...] = ("pyright",)

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
        if self.analyzers[:1] != ("pyright",) or not set(self.analyzers) <= set(ANALYZERS) \
                or len(set(self.analyzers)) != len(self.analyzers):
            raise ValueError(f"analyzers must be pyright, optionally followed by ruff; got {','.join(self.analyzers)}")
        if "ruff" in self.analyzers and ("error" not in self.severities or self.scope != "workspace"):
            raise ValueError("ruff findings count as errors of the whole workspace: use ruff with "
                             "--severity error and --scope workspace")
        if self.by_file not in BY_FILE:
            raise ValueError(f"unknown by-file table {self.by_file!r}; use one of {', '.join(BY_FILE)}")

    def to_json(self) -> dict[str, Any]:
        """What goes into every step bundle (so a different scoring gives a different bundleId)."""
        return {"severities": list(self.severities), "scope": self.scope, "diagTerm": self.diag_term,
                "weights": self.weights.to_json(), "clip": self.clip, "aggregate": self.aggregate,
                "inMemory": self.in_memory, "byFile": self.by_file, "analyzers": list(self.analyzers)}


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


@dataclass(frozen=True)
class _Delta:
    """What a pull changed: the diagnostics of the files whose diagnostics or text changed,
    before and after, and their texts (for diagnostic identities)."""

    files: tuple[str, ...] = ()
    before: tuple[Diag, ...] = ()
    after: tuple[Diag, ...] = ()
    texts_before: Mapping[str, str] | None = None
    texts_after: Mapping[str, str] | None = None
    lint_files: tuple[str, ...] = ()      # files whose ruff findings changed
    lint_before: tuple[Diag, ...] = ()
    lint_after: tuple[Diag, ...] = ()


@dataclass(frozen=True)
class RunnerState:
    """One in-memory trajectory's state (see :meth:`TrajectoryRunner.save_state`)."""

    overlay: Mapping[str, bytes | None]
    base: Mapping[str, tuple[bytes | None, int | None]]
    snapshot: Snapshot
    checked: frozenset[str]
    files: frozenset[str]
    step_no: int
    lint: Snapshot | None = None


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
        self.started = False
        self.step_no = 0
        self._allow_dirty = engine.options.allow_dirty
        # Told every step's bundle as it is built (batch prints them; --trace-file records them).
        self.on_bundle: Callable[[dict[str, Any]], Any] | None = None
        self.last_pulled: list[str] | None = None  # files the last pull asked for (None: all)
        self.checked: WorkspaceDiagnostics | None = None
        self.tracker: ChangeTracker | None = None
        self._restarts = -1
        self._texts_before: dict[str, str] = {}  # touched files -> their text at the last pull
        self.origin: dict[str, bytes | None] = {}  # every file a step touched -> its bytes at the start
        self.lint: LintDiagnostics | None = None  # the second analyzer (``analyzers`` has ruff)
        self._touched: set[str] = set()  # files the pending changes touched

    @property
    def ws(self) -> Any:
        return self.engine.ws

    @property
    def snapshot(self) -> Snapshot:
        if self.checked is None:
            raise InternalError("the runner has not started")
        return self.checked.snapshot

    @property
    def diagnostics(self) -> list[Diag]:
        """The workspace's current normalized diagnostics (every severity, every checked file)."""
        return self.snapshot.all()

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        if self.started:
            return
        if self.options.in_memory and not isinstance(self.engine.ws, OverlayWorkspace):
            if self.engine.session is not None:
                raise InternalError("in-memory rewards need the overlay before the server starts")
            mirror = Mirror(self.engine.ws.root)
            self.engine.cleanups.append(mirror.close)
            self.engine.ws = OverlayWorkspace(self.engine.ws.root, mirror)
        await self.engine.server()
        if not self.options.in_memory:
            # The tree may be dirty from our own steps later; only a tree dirty before
            # the run is the user's business (--allow-dirty).
            self._allow_dirty = self._allow_dirty or not git_state(self.ws).get("dirty", False)
        if "ruff" in self.options.analyzers:
            self.lint = LintDiagnostics(await self.engine.analyzer("ruff"))
        await self._pull_all()
        self.started = True

    # -- diagnostics -----------------------------------------------------------
    def _python_files(self) -> list[str]:
        """Every Python file the server may read as a workspace module, now."""
        assert self.checked is not None
        return sorted(set(self.ws.python_files()) | self.checked.checked)

    def _text(self, rel: str) -> str | None:
        """``rel``'s text as the server sees it (its open document, else the file)."""
        session = self.engine.session
        doc = session.docs.get(rel) if session is not None else None
        if doc is not None:
            return doc.text
        try:
            return self.ws.read(rel).text
        except LanserError:
            return None

    def _configure(self, session: Any) -> None:
        """Read the pyright configuration (again): which files are checked, the Python version
        of the analysis, whether import cycles are checked."""
        try:
            config = read_config(self.ws.root)
        except ConfigError as exc:
            raise InternalError(f"cannot read the pyright configuration: {exc}") from None
        previous = self.checked.snapshot if self.checked is not None else None
        self.checked = WorkspaceDiagnostics(session, FileSet(config))
        if previous is not None:
            self.checked.snapshot = previous
        version = python_version(self.ws.root, session.python.full_version)
        stdlib = stdlib_names(typeshed_dir(session.spec.name), version)
        if self.tracker is None:
            self.tracker = ChangeTracker(stdlib=stdlib, cycles=config.report_import_cycles,
                                         libraries=self.engine.library_fact, roots=config.roots)
        else:
            self.tracker.stdlib, self.tracker.cycles = stdlib, config.report_import_cycles
            self.tracker.roots = config.roots

    async def _pull_all(self) -> None:
        """Pull every checked file (the start, a server restart, any doubt), parsing every
        Python file for the affected-files rule meanwhile (the server runs on another core)."""
        session = await self.engine.server()
        self._configure(session)
        assert self.checked is not None and self.tracker is not None
        files = self._python_files()
        texts = {rel: t for rel in files if (t := self._text(rel)) is not None}
        tracker = self.tracker

        def parse() -> None:  # the rule's own work, on the other core while the server checks
            tracker.prime(texts)
            tracker.reset(files)
            tracker.prepare(texts.get)

        parsing = asyncio.get_running_loop().run_in_executor(None, parse)
        try:
            await self.checked.pull_all()
        finally:
            await parsing
        self._restarts = session.restarts
        self.last_pulled = None
        self._texts_before.clear()
        self._touched.clear()
        if self.lint is not None:
            gone = set(self.lint.snapshot.files) - self.checked.checked
            await self.lint.refresh(self.checked.order + sorted(gone), self.checked.checked, self._text)

    async def _pull(self) -> _Delta:
        """The diagnostics after the pending changes: the files they can affect are pulled,
        every other checked file keeps its diagnostics."""
        assert self.checked is not None and self.tracker is not None
        session = await self.engine.server()
        before = self.checked.snapshot
        lint_before = self.lint.snapshot if self.lint is not None else None
        touched = dict(self._texts_before)
        touched_paths = set(self._touched)
        self._texts_before.clear()
        self._touched.clear()
        if touched_paths & set(self.checked.config_files):
            # pyright re-reads a changed configuration in its own time: a new server reads it first
            await session.reload()
            self.tracker.forget_step()
        await self.tracker.ask_types_after(session)
        targets = self.tracker.targets(self._text) if session.restarts == self._restarts else None
        if targets is None:
            await self._pull_all()
            changes = {rel: self.checked.snapshot.files.get(rel) for rel in
                       set(before.files) | set(self.checked.snapshot.files)}
        else:
            self.last_pulled = sorted(targets)
            _, changes = await self.checked.refresh(targets)
        after = self.checked.snapshot
        files = sorted(rel for rel in set(changes) | set(touched)
                       if before.files.get(rel) != after.files.get(rel) or rel in touched)
        texts_after: dict[str, str] = {}
        texts_before: dict[str, str] = {}
        for rel in files:
            now = self._text(rel)
            if now is not None:
                texts_after[rel] = now
            was = touched.get(rel, now)
            if was is not None:
                texts_before[rel] = was
        lint_files: list[str] = []
        if self.lint is not None and lint_before is not None:
            if targets is not None:  # (a full pull linted every file again)
                await self.lint.refresh(touched_paths, self.checked.checked, self._text)
            lint_files = sorted(rel for rel in set(lint_before.files) | set(self.lint.snapshot.files)
                                if lint_before.files.get(rel) != self.lint.snapshot.files.get(rel))
            for rel in lint_files:
                now = self._text(rel)
                if now is not None:
                    texts_after.setdefault(rel, now)
                    texts_before.setdefault(rel, touched.get(rel, now))
        return _Delta(tuple(files),
                      tuple(d for rel in files for d in before.files.get(rel, ())),
                      tuple(d for rel in files for d in after.files.get(rel, ())),
                      texts_before, texts_after, tuple(lint_files),
                      tuple(d for rel in lint_files for d in lint_before.files.get(rel, ())) if lint_before else (),
                      tuple(d for rel in lint_files for d in self.lint.snapshot.files.get(rel, ()))
                      if self.lint is not None else ())

    def _sync(self, changes: Sequence[FileChange], *, note: bool = True) -> None:
        """Tell the session what changed: open/update Python files in memory, notify the disk.
        ``note``: the changes are a step's (the next pull decides what they affect); without
        it they only bring the server to a state whose diagnostics are already known."""
        session = self.engine.session
        assert session is not None and self.checked is not None and self.tracker is not None
        events: dict[str, str] = {}
        for c in changes:
            if not note:
                events[c.path] = "deleted" if c.after is None else "created" if c.before is None else "changed"
                continue
            self._touched.add(c.path)
            self.tracker.note(c.path, c.before, c.after)
            if c.before is not None and c.path not in self._texts_before:
                try:
                    self._texts_before[c.path] = decode_source(c.before, c.path).text
                except LanserError:
                    pass
            kind = "deleted" if c.after is None else "created" if c.before is None else "changed"
            events[c.path] = kind
            if kind == "created":
                self.checked.track(created=[c.path])
            elif kind == "deleted":
                self.checked.track(deleted=[c.path])
        for c in changes:
            if not c.path.endswith((".py", ".pyi")):
                continue
            if c.after is None:
                session.close(c.path)
                continue
            session.sync(c.path, _text_of(c.after, c.path),
                         previous=_text_of(c.before, c.path) if c.before is not None else None)
        # In memory a changed Python file exists only as a document version; everything else is
        # on a disk the server reads (the mirror, or the checkout).
        session.notify_disk_changes({rel: kind for rel, kind in events.items()
                                     if not (self.options.in_memory and kind == "changed"
                                             and rel.endswith((".py", ".pyi")))})

    # -- applying ----------------------------------------------------------------
    def _remember(self, plan: EditPlan) -> None:
        for c in plan.changes:
            if c.path not in self.base:
                self.base[c.path] = (c.before, c.before_mode)
            self.origin.setdefault(c.path, c.before)

    # -- many trajectories on one server (in memory) -----------------------------------------------
    def save_state(self) -> "RunnerState":
        """Where this trajectory stands (in memory): enough to come back to it later."""
        ws = self.ws
        assert isinstance(ws, OverlayWorkspace) and self.checked is not None and self.tracker is not None
        return RunnerState(dict(ws.overlay), dict(self.base), self.checked.snapshot,
                           frozenset(self.checked.checked), frozenset(self.tracker.files), self.step_no,
                           self.lint.snapshot if self.lint is not None else None)

    def load_state(self, state: "RunnerState") -> None:
        """Switch the server to another trajectory's files (only the files that differ are
        sent) and take its diagnostics, which are known: nothing is pulled."""
        ws = self.ws
        assert isinstance(ws, OverlayWorkspace) and self.checked is not None and self.tracker is not None
        changes = []
        for rel in sorted(set(ws.overlay) | set(state.overlay)):
            origin = self.origin.get(rel)
            old = ws.overlay.get(rel, origin) if rel in ws.overlay else origin
            new = state.overlay[rel] if rel in state.overlay else origin
            if old != new:
                changes.append(FileChange(rel, old, new))
                ws.set(rel, old, new, origin)
        self._sync(changes, note=False)
        self.base = dict(state.base)
        self.step_no = state.step_no
        self.checked.snapshot = state.snapshot
        if self.lint is not None and state.lint is not None:
            for c in changes:
                if c.path.endswith((".py", ".pyi")) and c.path in state.checked:
                    self.lint.show(c.path, _text_of(c.after, c.path) if c.after is not None else None)
            self.lint.snapshot = state.lint
        self.checked.checked = set(state.checked)
        self.tracker.absorb(state.files, [c.path for c in changes], self._text)
        self._texts_before.clear()

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
            ws.set(c.path, c.before, c.after, self.base[c.path][0])
        return ApplyResult(True, f"applied in memory: {len(plan.changes)} file(s)",
                           files=tuple(plan.paths), plan=plan, via="in-memory")

    async def restore(self) -> list[str]:
        """Put every file the run touched back to its bytes at the start; returns the paths."""
        if not self.base:
            return []
        if self.options.in_memory:
            ws = self.ws
            assert isinstance(ws, OverlayWorkspace)
            changes = []
            for rel, (data, _) in sorted(self.base.items()):
                now = ws.overlay[rel] if rel in ws.overlay else data
                if now != data:
                    changes.append(FileChange(rel, now, data))
                ws.set(rel, now, data, data)
        else:
            draft = Draft(self.ws)
            for rel, (data, mode) in sorted(self.base.items()):
                draft.set(rel, data, mode)
            plan = make_plan(draft.changes(), label="reset")
            if not plan.is_noop:
                # Not apply_plan: restoring the user's own bytes must not be refused by the
                # syntax check (a file that did not parse at the start) or the dirty-tree check.
                restore_plan(self.ws, plan)
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
        """Same semantics as ``lanser edit`` (the one planner): the selector's range replaced,
        re-indented."""
        ctx = self._context(step)
        out.resolution = ctx.resolve()
        planned = plan_edit(ctx, step.raw["text"], label=label)
        refuse_noop(planned)
        return planned.plan

    async def _plan_rename(self, step: Step, out: _Outcome, label: str) -> EditPlan:
        """Same semantics as ``lanser rename`` (the one planner): prepare-rename, then rename."""
        new_name = check_new_name(step.raw["newName"])
        ctx = self._context(step)
        out.resolution = ctx.resolve()
        session = await self.engine.server()
        require(session, "rename")
        prepared = await prepare_rename(ctx, session)
        planned = await plan_rename(ctx, session, new_name, prepared, label=label)
        refuse_noop(planned)
        return planned.plan

    # -- steps ----------------------------------------------------------------
    async def _mutate(self, step: Step) -> _Outcome:
        out = _Outcome()
        assert self.tracker is not None
        try:
            plan = out.plan = await self._plan(step, out)
            # The types of functions whose bodies alone change, asked while the server still
            # sees the old text (an on-disk apply writes the file first).
            await self.tracker.ask_types_before(await self.engine.server(),
                                                [(c.path, c.before, c.after) for c in plan.changes])
            out.result = self._apply(plan, out.resolution)
            out.changed = out.result.applied
        except LanserError as exc:
            out.status, out.error = "error", exc
        except Exception as exc:  # internal failure of one step: exit 1 for that step, run goes on
            out.status, out.error = "error", InternalError(f"internal error: {type(exc).__name__}: {exc}")
        if out.changed and out.plan is not None:
            self._sync(out.plan.changes)
        else:
            self.tracker.forget_step()
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
        started = time.monotonic()
        before = self.snapshot
        if isinstance(item, BadLine):
            out = _Outcome(status="error", error=item.error)
            return self._record(n, item, out, before, before, _Delta(), started)
        if item.op == "reset":
            await self.restore()
            out = _Outcome(changed=True)
        elif item.op == "query":
            out = await self._query(item)
        else:
            out = await self._mutate(item)
        delta = await self._pull() if out.changed else _Delta()
        return self._record(n, item, out, before, self.snapshot, delta, started)

    def _record(self, n: int, item: Step | BadLine, out: _Outcome, before: Snapshot, after: Snapshot,
                delta: _Delta, started: float) -> Record:
        opts = self.options
        op = item.op or "invalid"
        res = out.resolution
        if res is None and out.query is not None:
            res_json = ((out.query.get("resolution") or {}).get("resolved") or {})
            conf = float(res_json.get("confidence", 1.0)) if res_json else 1.0
        else:
            conf = res.confidence if res is not None else 1.0
        ok = out.status == "ok"
        if opts.scope == "touched":
            scope = set(out.plan.paths) if out.plan is not None and out.changed else set()
            compared_before = [d for rel in sorted(scope) for d in before.files.get(rel, ())]
            compared_after = [d for rel in sorted(scope) for d in after.files.get(rel, ())]
            totals = None
        else:
            compared_before, compared_after = list(delta.before), list(delta.after)
            totals = (_count(before, opts.severities), _count(after, opts.severities))
            if self.lint is not None:  # ruff findings count in D too (errors, any file)
                compared_before += delta.lint_before
                compared_after += delta.lint_after
                lint_now = self.lint.snapshot.totals["errors"]
                lint_was = lint_now - len(delta.lint_after) + len(delta.lint_before)
                totals = (totals[0] + lint_was, totals[1] + (lint_now if ok else lint_was))
        state = after if ok else before
        counts = _nonzero(state) if opts.by_file == "all" else _changed_counts(before, state, delta.files)
        err = out.error.to_json() if out.error is not None else None
        exit_code = out.error.exit_code if out.error is not None else 0
        safety = 1 if ok else 0
        record = build_record(
            step=n, op=op, before=compared_before, after=compared_after if ok else None,
            texts_before=delta.texts_before, texts_after=delta.texts_after, step_id=item.id, status=out.status,
            exit_code=exit_code, error=err, safety=safety, alpha_conf=min(1.0, max(0.0, conf)),
            weights=opts.weights, clip=opts.clip, diag_term_mode=opts.diag_term,
            severities=opts.severities, totals=totals, counts=counts, encoding=self.engine.encoding)
        if self.lint is not None:
            lint = self.lint.snapshot
            record["lint"] = {"ruff": {"findings": lint.totals["errors"],
                                       "byFile": {rel: len(lint.files.get(rel, ())) for rel in delta.lint_files}}}
        bundle = self._bundle(n, item, out, delta if ok else _Delta(), after if ok else before, record,
                              time.monotonic() - started)
        record["bundleId"] = bundle["bundleId"]
        if self.on_bundle is not None:
            self.on_bundle(bundle)
        return record

    def _bundle(self, n: int, item: Step | BadLine, out: _Outcome, delta: _Delta, state: Snapshot,
                record: Record, elapsed: float) -> dict[str, Any]:
        """The step's analysis bundle (the engine's envelope, :meth:`Engine.bundle`): the step,
        the diagnostics of the files it changed, the workspace's counts, edits and processReward."""
        eng = self.engine
        raw = item.raw if isinstance(item, Step) else (item.raw if isinstance(item.raw, dict) else None)
        facts: dict[str, Any] = {"diagnostics": list(delta.after),
                                 "counts": record["diagnostics"],
                                 "scope": {"kind": self.options.scope, "diagnostics": "changed-files",
                                           "files": list(delta.files)},
                                 "provenance": "lsp"}
        if self.lint is not None:
            facts["lint"] = {"ruff": list(delta.lint_after), "counts": record["lint"]["ruff"]}
        if out.query is not None:
            facts["query"] = {"bundleId": out.query.get("bundleId"), "facts": out.query.get("facts")}
        edits = None
        if out.plan is not None:
            edits = edits_section(out.plan, out.result)
            edits["workspaceEdit"] = _portable_uris(edits.get("workspaceEdit"), eng.ws.root)
        return eng.bundle({"cmd": "reward", "selector": None,
                           "args": {"step": n, "line": item.line, "op": item.op, "input": raw,
                                    "options": self.options.to_json()}},
                          error=out.error, resolution=out.resolution.to_json() if out.resolution is not None else None,
                          facts=facts, edits=edits, process_reward=record["processReward"], elapsed=elapsed)

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
            await self._pull()


def _text_of(data: bytes, rel: str) -> str:
    try:
        return decode_source(data, rel).text
    except LanserError:
        return data.decode("utf-8", errors="replace")


def _count(snapshot: Snapshot, severities: Sequence[str]) -> int:
    return sum(snapshot.totals[COUNTED[s]] for s in severities)


def _changed_counts(before: Snapshot, after: Snapshot, files: Sequence[str]) -> dict[str, Any]:
    """The workspace's totals, and per file only the files whose errors or warnings the step
    changed (a file that left the checked set is listed with zeros)."""
    by_file: dict[str, dict[str, int]] = {}
    for rel in sorted(files):
        old, new = file_counts(before.files.get(rel, ())), file_counts(after.files.get(rel, ()))
        if (old["errors"], old["warnings"]) != (new["errors"], new["warnings"]):
            by_file[rel] = {"errors": new["errors"], "warnings": new["warnings"]}
    return {**after.totals, "byFile": by_file}


def _nonzero(snapshot: Snapshot) -> dict[str, Any]:
    """The whole table: every file with an error or a warning (as the CLI's output lists them)."""
    counts = snapshot.counts()
    counts["byFile"] = {rel: c for rel, c in counts["byFile"].items() if c["errors"] or c["warnings"]}
    return counts


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
