"""Record and replay: a JSON Lines trace of every operation, replayed without a server.

A trace file holds *runs* (one per ``lanser`` process or batch), each made of
*operations*.  Every line is one event::

    {"event":"run", "format":"lanser-trace-v1", "run":ID, "root":..., "rootUri":..., "environment":{...}}
    {"event":"op-start", "run":ID, "op":N, "cmd":..., "selector":..., "args":{...}, "options":{...}}
    {"event":"frame", "run":ID, "op":N, "dir":"send"|"recv", "msg":{JSON-RPC message}}
    {"event":"workspace", "run":ID, "op":N, "files":{"rel/path.py":"<git blob id>", ...}}
    {"event":"bundle", "run":ID, "op":N, "bundle":{...}}
    {"event":"op-end", "run":ID, "op":N, "exitCode":..., "status":..., "bundleId":..., "check":"sha256:..."}

``check`` is the SHA-256 of the operation's preceding lines (as written), so an
edited line is detected before anything is replayed.  Replay rebuilds each
bundle with the ordinary :class:`~lanser.engine.Engine` whose session answers
``request`` from the recorded responses, in order, after checking that the
method and parameters are the ones recorded: no server is started.  Volatile
fields (``meta.volatile``, ``environment.platform``) are taken from the trace;
everything else must come out byte-identical.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .bundles.canonical import bundle_id, canonical_bytes
from .bundles.paths import to_uri
from .engine import Engine, Options
from .errors import (ContentModified, FsPermissions, LanserError, LsCrash, LsTimeout, NotFound,
                     ReplayMismatch, RequestCancelled)
from .server.pyenv import PythonEnv
from .server.registry import PINNED, ServerSpec
from .server.session import ServerInfo, Session, SessionConfig, _Doc
from .workspace import Workspace, blob_id

TRACE_FORMAT = "lanser-trace-v1"
EVENTS = ("run", "op-start", "frame", "workspace", "bundle", "op-end")
CONFIG_FILES = ("pyrightconfig.json", "pyproject.toml")
_NOT_REPLAYED = ("initialize", "shutdown")


def _line(obj: Any) -> str:
    """One trace line: compact, sorted keys (plain json: frames may hold any JSON number)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8") + b"\n")
    return "sha256:" + h.hexdigest()


# -- recording -------------------------------------------------------------------

def touched_files(ws: Workspace, bundle: dict[str, Any], frames: list[dict[str, Any]]) -> list[str]:
    """Workspace files an operation read: the target, every workspace path in the bundle's
    request/resolution/facts/edits, every document the server was asked about, the config."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "path" and isinstance(value, str):
                    found.add(value)
                elif key == "byFile" and isinstance(value, dict):
                    found.update(k for k in value if isinstance(k, str))
                else:
                    visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for key in ("request", "resolution", "facts", "edits"):
        visit(bundle.get(key))
    root_uri = to_uri(ws.root) + "/"
    for fr in frames:
        doc = ((fr.get("msg") or {}).get("params") or {})
        doc = doc.get("textDocument") if isinstance(doc, dict) else None
        uri = doc.get("uri") if isinstance(doc, dict) else None
        if fr.get("dir") == "send" and isinstance(uri, str) and uri.startswith(root_uri):
            from urllib.parse import unquote
            found.add(unquote(uri[len(root_uri):]))
    found.update(CONFIG_FILES)
    out = []
    for rel in found:
        if "://" in rel or rel.startswith("/") or rel in ("", "."):
            continue
        try:
            real, norm = ws.resolve(rel)
        except LanserError:
            continue
        if real.is_file():
            out.append(norm)
    return sorted(set(out))


def workspace_digest(ws: Workspace, rels: Iterable[str]) -> dict[str, str | None]:
    """rel -> git blob id of the file now (None when it is missing or unreadable)."""
    out: dict[str, str | None] = {}
    for rel in sorted(set(rels)):
        try:
            out[rel] = blob_id((ws.root / rel).read_bytes())
        except OSError:
            out[rel] = None
    return out


class Recorder:
    """Collects one run's frames and writes each finished operation to the trace file.

    Frames are buffered and an operation is appended in one write when it
    finishes, so concurrent ``lanser`` processes never interleave lines.
    """

    def __init__(self, path: str | os.PathLike[str], engine: Engine) -> None:
        self.path = Path(path)
        self.engine = engine
        self.run = uuid.uuid4().hex
        self.op = 0
        self._frames: list[dict[str, Any]] = []
        self._header = False
        try:
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise FsPermissions(f"cannot write trace file {os.fspath(path)!r}: {exc.strerror or exc}") from None

    def frame(self, direction: str, msg: dict[str, Any]) -> None:
        """The client's frame hook: every JSON-RPC message, both directions."""
        self._frames.append({"dir": direction, "msg": msg})

    def finish(self, cmd: str, selector: str | None, args: dict[str, Any], bundle: dict[str, Any]) -> None:
        """Append the operation (start, frames, workspace digest, bundle, end) to the trace."""
        self.op += 1
        frames, self._frames = self._frames, []
        ws = self.engine.ws
        base = {"run": self.run, "op": self.op}
        lines: list[str] = []
        if not self._header:
            env = bundle.get("environment") or {}
            lines.append(_line({"event": "run", "format": TRACE_FORMAT, "run": self.run,
                                "root": str(ws.root), "rootUri": to_uri(ws.root), "environment": env}))
            self._header = True
        op_lines = [_line({"event": "op-start", **base, "cmd": cmd, "selector": selector, "args": args,
                           "options": self.engine.options.to_json()})]
        op_lines += [_line({"event": "frame", **base, **fr}) for fr in frames]
        digest = workspace_digest(ws, touched_files(ws, bundle, frames))
        op_lines.append(_line({"event": "workspace", **base, "files": digest}))
        op_lines.append(_line({"event": "bundle", **base, "bundle": bundle}))
        op_lines.append(_line({"event": "op-end", **base, "exitCode": bundle["meta"]["exit_code"],
                               "status": bundle["status"], "bundleId": bundle["bundleId"],
                               "check": _check(op_lines)}))
        text = "".join(line + "\n" for line in lines + op_lines)
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise FsPermissions(f"cannot write trace file {self.path}: {exc.strerror or exc}") from None


# -- reading ---------------------------------------------------------------------

@dataclass
class Operation:
    """One recorded operation, validated."""

    index: int                      # 1-based position in the trace file
    run: str
    op: int
    start: dict[str, Any]
    frames: list[dict[str, Any]]
    files: dict[str, str | None]
    bundle: dict[str, Any]
    end: dict[str, Any]

    @property
    def cmd(self) -> str:
        return str(self.start.get("cmd"))

    @property
    def selector(self) -> str | None:
        return self.start.get("selector")

    def summary(self) -> dict[str, Any]:
        return {"n": self.index, "run": self.run, "op": self.op, "cmd": self.cmd, "selector": self.selector,
                "exitCode": self.end.get("exitCode"), "status": self.end.get("status"),
                "bundleId": self.end.get("bundleId"), "frames": len(self.frames)}


@dataclass
class Run:
    header: dict[str, Any]
    ops: list[Operation] = field(default_factory=list)


def _corrupt(path: str, n: int, why: str) -> ReplayMismatch:
    return ReplayMismatch(f"corrupt trace {path}: line {n}: {why}", details={"line": n})


def read_trace(path: str) -> list[Run]:
    """Parse and validate a trace file; a malformed or tampered one is E/REPLAY_MISMATCH."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise NotFound(f"trace {path!r} is a directory") from None
    except OSError as exc:
        raise NotFound(f"cannot read trace {path!r}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReplayMismatch(f"corrupt trace {path}: not UTF-8 (byte {exc.start})") from None
    runs: dict[str, Run] = {}
    order: list[Run] = []
    current: dict[str, Any] | None = None   # the operation being read
    raw_lines: list[str] = []
    index = 0
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise _corrupt(path, n, f"not JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(ev, dict) or ev.get("event") not in EVENTS:
            raise _corrupt(path, n, "not a trace event")
        kind = ev["event"]
        if kind == "run":
            if ev.get("format") != TRACE_FORMAT:
                raise _corrupt(path, n, f"unknown trace format {ev.get('format')!r}")
            if current is not None:
                raise _corrupt(path, n, "a run starts inside an unfinished operation")
            if not isinstance(ev.get("run"), str) or not isinstance(ev.get("rootUri"), str):
                raise _corrupt(path, n, "run event without run id or rootUri")
            runs[ev["run"]] = Run(ev)
            order.append(runs[ev["run"]])
            continue
        run_id, op = ev.get("run"), ev.get("op")
        if run_id not in runs:
            raise _corrupt(path, n, f"event of unknown run {run_id!r} (missing run event)")
        if kind == "op-start":
            if current is not None:
                raise _corrupt(path, n, f"operation {current['op']} has no end")
            if not isinstance(op, int) or not isinstance(ev.get("cmd"), str) or not isinstance(ev.get("args"), dict):
                raise _corrupt(path, n, "op-start without op, cmd or args")
            current = {"run": run_id, "op": op, "start": ev, "frames": [], "files": None, "bundle": None}
            raw_lines = [line]
            continue
        if current is None or current["run"] != run_id or current["op"] != op:
            raise _corrupt(path, n, f"{kind} event outside its operation (missing op-start)")
        if kind == "frame":
            if ev.get("dir") not in ("send", "recv") or not isinstance(ev.get("msg"), dict):
                raise _corrupt(path, n, "frame without dir or msg")
            current["frames"].append({"dir": ev["dir"], "msg": ev["msg"]})
        elif kind == "workspace":
            if not isinstance(ev.get("files"), dict):
                raise _corrupt(path, n, "workspace event without files")
            current["files"] = ev["files"]
        elif kind == "bundle":
            if current["files"] is None:
                raise _corrupt(path, n, "bundle before the workspace digest")
            bundle = ev.get("bundle")
            if not isinstance(bundle, dict) or "bundleId" not in bundle:
                raise _corrupt(path, n, "bundle event without a bundle")
            if bundle_id(bundle) != bundle.get("bundleId"):
                raise _corrupt(path, n, "the recorded bundle does not match its bundleId")
            current["bundle"] = bundle
        elif kind == "op-end":
            if current["bundle"] is None:
                raise _corrupt(path, n, f"operation {op} ends without a bundle")
            if ev.get("check") != _check(raw_lines):
                raise _corrupt(path, n, f"operation {op}: check digest differs (the trace was edited)")
            if ev.get("bundleId") != current["bundle"]["bundleId"]:
                raise _corrupt(path, n, f"operation {op}: op-end names another bundle")
            index += 1
            runs[run_id].ops.append(Operation(index, run_id, int(current["op"]), current["start"], current["frames"],
                                              current["files"], current["bundle"], ev))
            current = None
            continue
        raw_lines.append(line)
    if current is not None:
        raise ReplayMismatch(f"corrupt trace {path}: operation {current['op']} has no end (truncated trace)")
    if not order:
        raise ReplayMismatch(f"corrupt trace {path}: no run in it (empty trace)")
    return order


def operations(runs: list[Run]) -> list[Operation]:
    return [op for run in runs for op in run.ops]


def select(ops: list[Operation], *, cmd: str | None = None, selector: str | None = None,
           exit_code: int | None = None, status: str | None = None) -> list[Operation]:
    """The ``trace list`` filters (selector: substring of the selector text)."""
    out = []
    for op in ops:
        if cmd is not None and op.cmd != cmd:
            continue
        if selector is not None and selector not in (op.selector or ""):
            continue
        if exit_code is not None and op.end.get("exitCode") != exit_code:
            continue
        if status is not None and op.end.get("status") != status:
            continue
        out.append(op)
    return out


# -- replay ------------------------------------------------------------------------

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
        self.ws = ws
        self.config = config
        self.spec = spec
        self.python = python
        self.client = None
        self.info = None
        self.docs = {}
        self.restarts = 0
        self._next_id = 0
        self._lock = asyncio.Lock()
        self.queue = queue
        self.old_root = old_root
        self.new_root = to_uri(ws.root)
        self.current_op = 0
        self.mismatch: str | None = None

    def _fail(self, why: str) -> ReplayMismatch:
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
                raise LsTimeout(f"timed out after {self.config.timeout:g}s waiting for {method}")
            raise LsCrash(f"{self.spec.name} gave no answer to {method} in the trace")
        raw = rebase(ex.response, self.old_root, self.new_root)
        err = raw.get("error")
        if err:
            code = err.get("code")
            if code == -32800:
                raise RequestCancelled(f"{method} was cancelled by the server: {err.get('message')}")
            if code == -32801:
                raise ContentModified(f"{method}: content modified: {err.get('message')}")
            raise LanserError(f"{method} failed: {err.get('message')} (code {code})")
        return raw.get("result")

    def sync(self, rel: str, text: str) -> int:
        doc = self.docs.get(rel)
        if doc is None:
            doc = self.docs[rel] = _Doc(1, text)
        elif doc.text != text:
            doc.version += 1
            doc.text = text
        return doc.version

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
        self._current_op = 0
        old_root = str(run.header["rootUri"])

        def factory(ws: Workspace, config: SessionConfig) -> Session:
            self.replay_session = ReplaySession(ws, config, queue=self.queue, old_root=old_root,
                                                spec=spec, python=python)
            self.replay_session.current_op = self._current_op
            return self.replay_session

        super().__init__(options, session_factory=factory, spec=spec)
        self._python = python
        self._platform = env.get("platform")

    def environment(self) -> dict[str, Any]:
        env = super().environment()
        env["platform"] = self._platform  # volatile: restored from the trace
        return env


@dataclass
class ReplayResult:
    op: Operation
    status: str                     # identical | mismatch | skipped
    reason: str | None = None
    bundle: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"n": self.op.index, "run": self.op.run, "op": self.op.op, "cmd": self.op.cmd,
               "selector": self.op.selector, "status": self.status,
               "bundleId": self.op.bundle.get("bundleId"),
               "replayedBundleId": (self.bundle or {}).get("bundleId")}
        if self.reason:
            out["reason"] = self.reason
        return out


def check_workspace(ws: Workspace, files: dict[str, str | None]) -> str | None:
    """The first recorded file whose content differs now, as a message; None when all match."""
    now = workspace_digest(ws, files)
    for rel, recorded in sorted(files.items()):
        if now.get(rel) != recorded:
            was, cur = recorded[:12] if recorded else "missing", (now.get(rel) or "missing")[:12]
            return f"{rel} changed since the trace (recorded blob {was}, now {cur})"
    return None


def check_reward(bundle: dict[str, Any]) -> str | None:
    """Recompute ``processReward.r`` from its components (the rewards read bundles only)."""
    pr = bundle.get("processReward")
    if not isinstance(pr, dict) or not isinstance(pr.get("components"), dict):
        return None
    from .rewards.formula import Weights, process_reward
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


async def replay_run(run: Run, workspace: str) -> list[ReplayResult]:
    """Replay every operation of one run on one replay engine (as it was recorded)."""
    results: list[ReplayResult] = []
    engine: ReplayEngine | None = None
    for op in run.ops:
        opts = dict(op.start.get("options") or {})
        opts["workspace"] = workspace
        for key in ("allow", "deny"):
            opts[key] = tuple(opts.get(key) or ())
        try:
            options = Options(**{k: v for k, v in opts.items() if k in Options.__dataclass_fields__})
            if engine is None:
                engine = ReplayEngine(options, run)
            else:
                engine.options = options
        except (TypeError, LanserError) as exc:
            results.append(ReplayResult(op, "mismatch", f"cannot build the replay engine: {exc}"))
            continue
        if (op.start.get("args") or {}).get("apply") or ((op.bundle.get("edits") or {}).get("applied")):
            results.append(ReplayResult(op, "skipped", "an applied edit is not replayed (replay never writes)"))
            continue
        why = check_workspace(engine.ws, op.files)
        if why is not None:
            results.append(ReplayResult(op, "mismatch", why))
            continue
        if engine.replay_session is not None:
            engine.replay_session.mismatch = None
        engine.queue[:] = [ex for ex in engine.queue if ex.op >= op.op]
        _set_op(engine, op.op)
        regen = await engine.run(op.cmd, op.selector, dict(op.start.get("args") or {}))
        regen = _restore_volatile(regen, op.bundle)
        session = engine.replay_session
        reason = session.mismatch if session is not None else None
        if reason is None and session is not None and any(ex.op == op.op and ex.method not in _NOT_REPLAYED
                                                          for ex in engine.queue):
            reason = "replay made fewer requests than were recorded"
        if reason is None and canonical_bytes(regen) != canonical_bytes(op.bundle):
            reason = f"regenerated bundle {regen.get('bundleId')} differs from the recorded one"
        if reason is None:
            reason = check_reward(op.bundle)
        results.append(ReplayResult(op, "mismatch" if reason else "identical", reason, regen))
    if engine is not None:
        await engine.close()
    return results


def _set_op(engine: ReplayEngine, op: int) -> None:
    """Which operation is replaying (the session may be created lazily during it)."""
    engine._current_op = op
    if engine.replay_session is not None:
        engine.replay_session.current_op = op


def replay(path: str, workspace: str, *, only: int | None = None) -> list[ReplayResult]:
    """Replay a trace (or only its operation number ``only``) against ``workspace``."""
    runs = read_trace(path)
    if only is not None:
        ops = operations(runs)
        if not 1 <= only <= len(ops):
            raise NotFound(f"trace {path} has {len(ops)} operations; no operation {only}")
    results: list[ReplayResult] = []
    for run in runs:
        if only is not None and all(op.index != only for op in run.ops):
            continue
        got = asyncio.run(replay_run(run, workspace))
        results.extend(r for r in got if only is None or r.op.index == only)
    return results
