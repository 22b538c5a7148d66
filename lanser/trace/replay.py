"""Replay a trace: rebuild every recorded bundle with no server, no Node.js, no git.

Each run is replayed by the ordinary :class:`~lanser.engine.Engine` (and, for
reward runs and batch steps that change files, the ordinary
:class:`~lanser.rewards.runner.TrajectoryRunner`) on a session that answers
each request from the recorded responses, in order, after checking that the
method and parameters are the ones recorded.  Git's answers about the work
tree come from the trace's ``git`` events.  Volatile fields (``meta.volatile``,
``environment.platform``) are taken from the trace; everything else must come
out byte-identical, and ``processReward.r`` is recomputed from its components.

Where it runs (README, "Record and replay"):

- a trace in which no operation writes is replayed **in place**: each
  operation's digest (the files it read) is checked against the workspace
  first;
- a trace with an operation that writes (a ``reward`` run, an applied edit, a
  mutating batch step) is replayed in a **scratch copy** made from the
  workspace as the trace began (:func:`lanser.trace.format.trace_base`; the workspace
  must still be in that state), where the writes are re-applied; after each
  operation the scratch must hold what the operation saw.  The workspace itself
  is never written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..bundles.canonical import canonical_bytes
from ..bundles.paths import to_uri
from ..engine import Engine
from ..errors import LanserError, LsCrash, NotFound, ReplayMismatch
from ..options import Options
from ..server.pyenv import PythonEnv
from ..server.registry import PINNED, ServerSpec
from ..server.session import Document, ServerInfo, Session, SessionConfig, response_error, timeout_error
from ..workspace import Workspace
from .format import LANSER_DIR, Operation, Run, operations, read_trace, trace_base, workspace_digest, workspace_rel

_NOT_REPLAYED = ("initialize", "shutdown")


# -- the recorded server -------------------------------------------------------------

@dataclass
class Exchange:
    """One recorded client request and what came back."""

    op: int
    method: str
    params: Any
    response: dict[str, Any] | None = None
    cancelled: bool = False


def exchanges(run: Run) -> list[Exchange]:
    """The client's requests of a run, in the order they were sent, with their answers."""
    out: list[Exchange] = []
    by_id: dict[Any, Exchange] = {}
    for op in run.ops:
        for fr in op.frames:
            msg = fr["msg"]
            if fr["dir"] == "send":
                if "method" in msg and "id" in msg:
                    ex = Exchange(op.op, msg["method"], msg.get("params"))
                    by_id[msg["id"]] = ex
                    out.append(ex)
                elif msg.get("method") == "$/cancelRequest":
                    ex2 = by_id.get((msg.get("params") or {}).get("id"))
                    if ex2 is not None:
                        ex2.cancelled = True
            elif "method" not in msg and "id" in msg and msg["id"] in by_id:
                by_id[msg["id"]].response = {k: msg[k] for k in ("result", "error") if k in msg}
    return out


def rebase(node: Any, old: str, new: str) -> Any:
    """Every string equal to ``old`` or under ``old/`` moved to ``new`` (the workspace root URI)."""
    if isinstance(node, str):
        if node == old or node.startswith(old + "/"):
            return new + node[len(old):]
        return node
    if isinstance(node, list):
        return [rebase(v, old, new) for v in node]
    if isinstance(node, dict):
        return {k: rebase(v, old, new) for k, v in node.items()}
    return node


_CONVERTER: Any = None


def _unstructure(params: Any) -> Any:
    """Params as they went on the wire (the same converter pygls uses)."""
    global _CONVERTER
    if params is None or isinstance(params, (dict, list, str, int, float)):
        return params
    if _CONVERTER is None:
        from pygls.protocol import default_converter
        _CONVERTER = default_converter()
    return json.loads(json.dumps(_CONVERTER.unstructure(params)))


class ReplaySession(Session):
    """A Session that answers from a trace; it never starts a process."""

    def __init__(self, ws: Workspace, config: SessionConfig, *, queue: list[Exchange], old_root: str,
                 spec: ServerSpec, python: PythonEnv) -> None:  # no super().__init__: no server lookup
        self.setup(ws, config, spec, python)
        self.queue = queue
        self.old_root = old_root
        self.new_root = to_uri(ws.root)
        self.current_op = 0
        self.mismatch: str | None = None
        self.on_mismatch: Callable[[str], None] | None = None  # told the first mismatch

    def _fail(self, why: str) -> ReplayMismatch:
        if self.mismatch is None and self.on_mismatch is not None:
            self.on_mismatch(why)
        self.mismatch = self.mismatch or why
        return ReplayMismatch(why)

    def _pop(self, method: str) -> Exchange:
        while self.queue and self.queue[0].method == "shutdown":
            self.queue.pop(0)
        if not self.queue or self.queue[0].op != self.current_op:
            raise self._fail(f"replay sent {method} but operation {self.current_op} recorded no more requests")
        ex = self.queue.pop(0)
        if ex.method != method:
            raise self._fail(f"replay sent {method} where {ex.method} was recorded")
        return ex

    async def start(self) -> None:
        ex = self._pop("initialize")
        if ex.response is None:  # the recorded start failed: fail the same way
            if ex.cancelled:
                raise timeout_error(self.config.timeout, "initialize")
            raise LsCrash(f"{self.spec.name} gave no answer to initialize in the trace")
        result = rebase((ex.response or {}).get("result") or {}, self.old_root, self.new_root)
        caps = result.get("capabilities", {}) if isinstance(result, dict) else {}
        self.info = ServerInfo(self.spec.name, self.spec.version, self.spec.version == self.spec.pinned,
                               caps.get("positionEncoding") or "utf-16", caps)

    async def stop(self) -> None:
        return None

    async def restart(self) -> None:
        raise LsCrash("a replayed server cannot restart")

    @property
    def pid(self) -> int | None:
        return None

    async def _request(self, method: str, params: Any) -> Any:
        return await self.request(method, params)

    async def request(self, method: str, params: Any) -> Any:
        ex = self._pop(method)
        sent = _unstructure(params)
        recorded = rebase(ex.params, self.old_root, self.new_root)
        if canonical_bytes(sent) != canonical_bytes(recorded):
            raise self._fail(f"replay sent {method} with other parameters than recorded")
        if ex.response is None:
            if ex.cancelled:
                raise timeout_error(self.config.timeout, method)
            raise LsCrash(f"{self.spec.name} gave no answer to {method} in the trace")
        raw = rebase(ex.response, self.old_root, self.new_root)
        if raw.get("error"):
            raise response_error(method, raw["error"])
        return raw.get("result")

    def sync(self, rel: str, text: str, *, previous: str | None = None) -> int:
        doc = self.docs.get(rel)
        if doc is None:
            doc = self.docs[rel] = Document(1, text)
        elif doc.text != text:
            doc.version += 1
            doc.text = text
        return doc.version

    def touch(self, rel: str) -> None:
        doc = self.docs.get(rel)
        if doc is not None:
            doc.version += 1

    def close(self, rel: str) -> None:
        self.docs.pop(rel, None)

    def notify_disk_changes(self, changes: dict[str, str]) -> None:
        return None


class ReplayEngine(Engine):
    """An Engine whose server is a trace and whose environment is the recorded one."""

    def __init__(self, options: Options, run: Run) -> None:
        env = run.header.get("environment") or {}
        server = env.get("server") or {}
        name = str(server.get("name") or options.server)
        version = str(server.get("version") or "unknown")
        spec = ServerSpec(name=name, version=version, pinned=PINNED.get(name, version), node="", langserver="", cli="")
        python = PythonEnv(None, "replay", str((env.get("python") or {}).get("version") or ""))
        self.queue = [ex for ex in exchanges(run)]
        self.replay_session: ReplaySession | None = None
        self.analyzers: list[ReplaySession] = []
        self.on_mismatch: Callable[[str], None] | None = None
        self._current_op = 0
        self.facts: list[dict[str, Any]] = []  # the current operation's env answers, in order
        old_root = str(run.header["rootUri"])

        def factory(ws: Workspace, config: SessionConfig, analyzer: ServerSpec | None = None) -> Session:
            if analyzer is not None:  # a second analyzer answers from the same recorded stream
                extra = ReplaySession(ws, config, queue=self.queue, old_root=old_root, spec=analyzer,
                                      python=python)
                extra.current_op = self._current_op
                extra.on_mismatch = self.on_mismatch
                self.analyzers.append(extra)
                return extra
            self.replay_session = ReplaySession(ws, config, queue=self.queue, old_root=old_root,
                                                spec=spec, python=python)
            self.replay_session.current_op = self._current_op
            self.replay_session.on_mismatch = self.on_mismatch
            return self.replay_session

        super().__init__(options, session_factory=factory, spec=spec)
        self._python = python
        self._platform = env.get("platform")

    def environment(self) -> dict[str, Any]:
        env = super().environment()
        env["platform"] = self._platform  # volatile: restored from the trace
        return env

    def begin(self, op: int) -> None:
        """Operation ``op`` replays now (the session may be created lazily during it)."""
        self.queue[:] = [ex for ex in self.queue if ex.op >= op]
        self._current_op = op
        for session in [self.replay_session, *self.analyzers]:
            if session is not None:
                session.current_op = op
                session.mismatch = None

    def library_fact(self, external: frozenset[str], workspace_tops: frozenset[str],
                     stdlib: frozenset[str]) -> frozenset[str]:
        """The recorded answer to the same question (the environment is not read)."""
        question = sorted(external)
        if not self.facts:
            raise self._mismatch("replay asked the environment about libraries more often than recorded")
        fact = self.facts.pop(0)
        if fact.get("fact") != "libraries" or fact.get("question") != question:
            raise self._mismatch("replay asked the environment another question than recorded")
        answer = fact.get("answer")
        if not isinstance(answer, list) or not all(isinstance(a, str) for a in answer):
            raise self._mismatch("the recorded libraries answer is not a list of names")
        return frozenset(answer)

    def _mismatch(self, why: str) -> ReplayMismatch:
        if self.on_mismatch is not None:
            self.on_mismatch(why)
        return ReplayMismatch(why)

    def unanswered(self, op: int) -> bool:
        """Whether operation ``op`` recorded requests the replay did not make."""
        return any(ex.op == op and ex.method not in _NOT_REPLAYED for ex in self.queue)


# -- the recorded git ------------------------------------------------------------------

class GitOracle:
    """Answers git's work-tree queries from an operation's ``git`` events, in order."""

    def __init__(self) -> None:
        self.answers: list[Any] = []  # dirty paths, None, or {"unreadable": complaint}
        self.on_mismatch: Callable[[str], None] | None = None  # told each mismatch

    def begin(self, op: Operation) -> None:
        self.answers = list(op.git)

    def __call__(self, ws: Workspace) -> list[str] | None:
        if not self.answers:
            why = "replay asked git about the work tree more often than recorded"
            if self.on_mismatch is not None:
                self.on_mismatch(why)
            raise ReplayMismatch(why)
        answer = self.answers.pop(0)
        if isinstance(answer, dict):  # git refused to read the repository when recorded
            from ..edits.gitstate import unreadable_error

            raise unreadable_error(ws, str(answer["unreadable"]))
        return list(answer) if answer is not None else None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Answer in place of ``lanser.edits.gitstate.dirty_paths`` (git_state, check_clean)."""
        from ..edits import gitstate

        saved = gitstate.dirty_paths
        gitstate.dirty_paths = self
        try:
            yield
        finally:
            gitstate.dirty_paths = saved


# -- results ---------------------------------------------------------------------------

@dataclass
class ReplayResult:
    op: Operation
    status: str                     # identical | mismatch
    reason: str | None = None
    bundles: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    scratch: bool = False           # replayed in a scratch copy (the trace writes)

    @property
    def bundle(self) -> dict[str, Any] | None:
        return self.bundles[-1] if self.bundles else None

    def to_json(self) -> dict[str, Any]:
        out = {"n": self.op.index, "run": self.op.run, "op": self.op.op, "cmd": self.op.cmd,
               "selector": self.op.selector, "status": self.status,
               "bundleId": self.op.end.get("bundleId"),
               "replayedBundleId": (self.bundle or {}).get("bundleId")}
        if self.op.trajectory:
            out["steps"] = len(self.bundles)
        if self.reason:
            out["reason"] = self.reason
        return out


def check_workspace(ws: Workspace, files: dict[str, str | None], *,
                    verb: str = "changed since the trace") -> str | None:
    """The first recorded file whose content differs now, as a message; None when all match."""
    for rel in files:
        if not _inside(ws, rel):
            return f"the trace names {rel!r}, which is not a path inside the workspace"
    now = workspace_digest(ws, files)
    for rel, recorded in sorted(files.items()):
        if now.get(rel) != recorded:
            was, cur = recorded[:12] if recorded else "missing", (now.get(rel) or "missing")[:12]
            return f"{rel} {verb} (recorded blob {was}, now {cur})"
    return None


def _inside(ws: Workspace, rel: str) -> bool:
    """A relative path without ``..`` that stays in the workspace after symlinks (a trace may
    be hostile: its paths are read, and copied into the scratch)."""
    parts = rel.split("/")
    return ".." not in parts and workspace_rel(ws, rel) is not None


def check_reward(bundle: dict[str, Any]) -> str | None:
    """Recompute ``processReward.r`` from its components (the rewards read bundles only)."""
    pr = bundle.get("processReward")
    if not isinstance(pr, dict) or not isinstance(pr.get("components"), dict):
        return None
    from ..rewards.formula import Weights, process_reward
    c, w = pr["components"], pr.get("weights") or {}
    try:
        again = process_reward(diag_before=c["diag_before"], diag_after=c["diag_after"], safety=c["safety"],
                               alpha_conf=c.get("alpha_conf", 1.0), weights=Weights(**w),
                               clip=pr.get("clip"), diag_term=pr.get("diagTerm", "delta"),
                               term=pr.get("term") if pr.get("diagTerm", "delta") != "delta" else None)
    except (KeyError, TypeError, ValueError) as exc:
        return f"processReward cannot be recomputed: {exc}"
    if again["r"] != pr.get("r"):
        return f"processReward.r {pr.get('r')} differs from Eq. 5.1 on its components ({again['r']})"
    return None


def _restore_volatile(regen: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    meta_rec = recorded.get("meta") or {}
    meta = regen.get("meta")
    if isinstance(meta, dict):
        meta.pop("volatile", None)
        if "volatile" in meta_rec:
            meta["volatile"] = meta_rec["volatile"]
    return regen


def _options(op: Operation, workspace: str) -> Options:
    return Options.from_values({**(op.start.get("options") or {}), "workspace": workspace})


def reward_options(args: dict[str, Any]) -> tuple[str, Any]:
    """(STEPS text, RewardOptions) of a recorded reward operation (see trace.trajectory_args)."""
    from ..rewards.formula import Weights
    from ..rewards.runner import RewardOptions

    o = args["options"]
    options = RewardOptions(severities=tuple(o["severities"]), scope=o["scope"], diag_term=o["diagTerm"],
                            weights=Weights(**o["weights"]), clip=o["clip"], aggregate=o["aggregate"],
                            in_memory=bool(o["inMemory"]), reset_between=bool(o["resetBetween"]),
                            by_file=str(o.get("byFile", "changed")),
                            analyzers=tuple(o.get("analyzers") or ("pyright",)))
    steps = args["steps"]
    if not isinstance(steps, str):
        raise TypeError("steps is not a string")
    return steps, options


# -- replaying ---------------------------------------------------------------------------

class _RunReplay:
    """One run's replay engine, its batch steps and the git oracle."""

    def __init__(self, run: Run, workspace: str, oracle: GitOracle, scratch: bool) -> None:
        self.run = run
        self.workspace = workspace
        self.oracle = oracle
        self.scratch = scratch
        self.engine: ReplayEngine | None = None
        self.batch: Any = None
        self.first: str | None = None  # the operation's first mismatch (server or git)
        oracle.on_mismatch = self._note

    def _note(self, why: str) -> None:
        self.first = self.first or why

    async def op(self, op: Operation) -> ReplayResult:
        try:
            options = _options(op, self.workspace)
            if self.engine is None:
                self.engine = ReplayEngine(options, self.run)
                self.engine.on_mismatch = self._note
            else:
                self.engine.options = options
        except (TypeError, LanserError) as exc:
            return ReplayResult(op, "mismatch", f"cannot build the replay engine: {exc}", scratch=self.scratch)
        engine = self.engine
        plain = Workspace(self.workspace)
        if not self.scratch:
            why = check_workspace(plain, op.files)
            if why is not None:
                return ReplayResult(op, "mismatch", why)
        engine.begin(op.op)
        engine.facts = list(op.env)
        self.oracle.begin(op)
        self.first = None
        records: list[dict[str, Any]] = []
        error: dict[str, Any] | None = None
        try:
            if op.trajectory:
                bundles, records, error = await self._trajectory(engine, op)
            elif isinstance(op.args.get("step"), dict):
                bundles = [await self._batch_step(engine, op)]
            else:
                regen = await engine.run(op.cmd, op.selector, op.args)
                bundles = [_restore_volatile(regen, op.bundle)]
        except (KeyError, TypeError, ValueError, LanserError) as exc:  # a forged, resealed op-start
            return ReplayResult(op, "mismatch", f"the recorded operation cannot be replayed: {exc}",
                                scratch=self.scratch)
        reason = self._compare(op, bundles, records, error)
        if reason is None and self.scratch and not op.trajectory:
            reason = check_workspace(plain, op.files, verb="differs after the replay from what the operation saw")
        return ReplayResult(op, "mismatch" if reason else "identical", reason, bundles, records, self.scratch)

    async def _trajectory(self, engine: Engine, op: Operation) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                       dict[str, Any] | None]:
        from ..rewards.runner import TrajectoryRunner
        from ..rewards.steps import parse_steps

        text, options = reward_options(op.args)
        items = parse_steps(text, blank_separates=options.reset_between)
        runner = TrajectoryRunner(engine, options)
        bundles: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        runner.on_bundle = bundles.append
        try:
            await runner.start()
            await runner.run(items, emit=records.append)
        except LanserError as exc:
            return bundles, records, exc.to_json()
        return bundles, records, None

    async def _batch_step(self, engine: Engine, op: Operation) -> dict[str, Any]:
        from ..batch import BatchSteps
        from ..rewards.steps import validate_step

        args = op.args
        step = validate_step(args["step"], int(args["line"]))
        if self.batch is None:
            self.batch = BatchSteps(engine, engine)
        bundle: dict[str, Any] = await self.batch.mutate(int(args["n"]), step)
        return bundle

    def _compare(self, op: Operation, bundles: list[dict[str, Any]], records: list[dict[str, Any]],
                 error: dict[str, Any] | None) -> str | None:
        engine = self.engine
        assert engine is not None
        session = engine.replay_session
        reason = self.first
        if reason is None and session is not None and engine.unanswered(op.op):
            reason = "replay made fewer requests than were recorded"
        if reason is None and engine.facts:
            reason = "replay asked the environment less often than recorded"
        if reason is None and self.oracle.answers:
            reason = "replay asked git about the work tree less often than recorded"
        if reason is None and canonical_bytes(error) != canonical_bytes(op.end.get("error")):
            reason = f"the run failed differently: {(error or {}).get('message')!r} where " \
                     f"{(op.end.get('error') or {}).get('message')!r} was recorded"
        if reason is None and len(bundles) != len(op.bundles):
            reason = f"replay made {len(bundles)} bundles where {len(op.bundles)} were recorded"
        if reason is None:
            for k, (regen, recorded) in enumerate(zip(bundles, op.bundles), start=1):
                if canonical_bytes(regen) != canonical_bytes(recorded):
                    where = f" (step {k})" if op.trajectory else ""
                    reason = f"regenerated bundle {regen.get('bundleId')}{where} differs from the recorded one"
                    break
        if reason is None and canonical_bytes(records) != canonical_bytes(op.records):
            reason = "regenerated reward records differ from the recorded ones"
        if reason is None:
            reason = next((why for why in map(check_reward, op.bundles) if why), None)
        return reason

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()


async def replay_runs(runs: list[Run], workspace: str, *, scratch: bool,
                      source: Workspace | None = None) -> list[ReplayResult]:
    """Replay every operation of every run, in order, on one replay engine per run (in a
    scratch copy of ``source``, the user's workspace, when ``scratch``)."""
    oracle = GitOracle()
    results: list[ReplayResult] = []
    with oracle.installed():
        for run in runs:
            if scratch:
                mirror_lanser_dir(Path(workspace), run.header.get("lanserDir"), source)
            state = _RunReplay(run, workspace, oracle, scratch)
            try:
                for op in run.ops:
                    results.append(await state.op(op))
            finally:
                await state.close()
    return results


def copy_base(ws: Workspace, base: dict[str, str | None], dest: Path) -> None:
    """Copy the files ``base`` names (those that existed) from ``ws`` into ``dest``."""
    for rel, blob in sorted(base.items()):
        if blob is None:
            continue
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = ws.root / rel
        shutil.copyfile(src, dst)
        shutil.copymode(src, dst)


def mirror_lanser_dir(scratch: Path, existed: Any, source: Workspace | None) -> None:
    """Give the scratch copy a ``.lanser/`` exactly when the run began with one (applying
    checks more when it does not exist yet); its content-addressed ``snapshots/`` come from
    the workspace.  Traces without the field leave the scratch as it is."""
    path = scratch / LANSER_DIR
    if existed is True and not path.exists():
        path.mkdir()
        snapshots = source.root / LANSER_DIR / "snapshots" if source is not None else None
        if snapshots is not None and snapshots.is_dir() and source is not None \
                and source.contains(Path(os.path.realpath(snapshots))):
            shutil.copytree(snapshots, path / "snapshots", symlinks=False)
    elif existed is False and path.exists():
        shutil.rmtree(path)


def replay(path: str, workspace: str, *, only: int | None = None) -> list[ReplayResult]:
    """Replay a trace (or only its operation number ``only``) against ``workspace``.

    A trace that writes is replayed in a scratch copy of the workspace as the trace
    began; a workspace no longer in that state is E/REPLAY_MISMATCH.  ``only``
    still replays the operations before it there (they build its state)."""
    runs = read_trace(path)
    ops = operations(runs)
    if only is not None and not 1 <= only <= len(ops):
        raise NotFound(f"trace {path} has {len(ops)} operations; no operation {only}")
    if not any(op.writes for op in ops):
        if only is not None:
            runs = [run for run in runs if any(op.index == only for op in run.ops)]
        results = asyncio.run(replay_runs(runs, workspace, scratch=False))
    else:
        ws = Workspace(workspace)
        base = trace_base(ops)
        why = check_workspace(ws, base)
        if why is not None:
            raise ReplayMismatch(f"{why}; the trace writes to the workspace, so it replays (in a scratch copy) "
                                 f"from the workspace as it was when the trace began")
        with tempfile.TemporaryDirectory(prefix="lanser-replay-") as tmp:
            scratch = Path(tmp) / "ws"
            scratch.mkdir()
            copy_base(ws, base, scratch)
            results = asyncio.run(replay_runs(runs, str(scratch), scratch=True, source=ws))
    return [r for r in results if only is None or r.op.index == only]
