"""The trace format: its events, the digests it records, and reading it back (validated).

Recording is :mod:`lanser.trace.record`, replaying :mod:`lanser.trace.replay`.

A trace file holds *runs* (one per ``lanser`` process or batch), each made of
*operations*.  Every line is one event::

    {"event":"run", "format":"lanser-trace-v2", "run":ID, "root":..., "rootUri":..., "environment":{...},
     "lanserDir":bool}
    {"event":"op-start", "run":ID, "op":N, "cmd":..., "selector":..., "args":{...}, "options":{...}}
    {"event":"frame", "run":ID, "op":N, "dir":"send"|"recv", "msg":{JSON-RPC message}}
    {"event":"git", "run":ID, "op":N, "dirtyPaths":[...]|null[, "unreadable":"git's complaint"]}
    {"event":"workspace", "run":ID, "op":N, "files":{"rel/path.py":"<git blob id>"|null, ...}}
    {"event":"bundle", "run":ID, "op":N, "bundle":{...}}
    {"event":"record", "run":ID, "op":N, "record":{...}}
    {"event":"op-end", "run":ID, "op":N, "exitCode":..., "status":..., "bundleId":..., "check":"sha256:..."}

``check`` is the SHA-256 of the run's ``run`` line and the operation's preceding
lines (as written), so an edited line is detected before anything is replayed.

``env`` events are facts read from the machine's environment that steer what
the run asked the server (which installed libraries reach a workspace module:
lanser/diagnostics/libraries.py); replay answers from them too.

``git`` events are the answers git gave about the work tree (the dirty-tree
check of an apply, and whether a reward run may write): replay answers from
them, like it answers the server from the frames, so it needs no git either.

A *trajectory* operation (``lanser reward``: one operation for the whole run)
holds one ``bundle`` per step and the ``record`` lines the command printed;
its ``workspace`` digest is the workspace **as the run began** (every Python
file, the pyright configuration, and every other file a step read or wrote,
at its content before the first step).  Every other operation has exactly one
bundle and its digest holds the files it read as they were when it finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import unquote

from ..bundles.canonical import bundle_id
from ..bundles.paths import to_uri
from ..errors import LanserError, NotFound, ReplayMismatch
from ..workspace import CONFIG_FILES, Workspace, blob_id

TRACE_FORMAT = "lanser-trace-v2"
EVENTS = ("run", "op-start", "frame", "git", "env", "workspace", "bundle", "record", "op-end")

GitAnswer = Any
"""One recorded git answer: a list of dirty paths, None (no git work tree), or
``{"unreadable": complaint}`` (git refused to read the repository)."""

TRAJECTORY_CMDS = ("reward",)
LANSER_DIR = ".lanser"  # lanser's own directory in the workspace (edit journal, lock, snapshots)


def event_line(obj: Any) -> str:
    """One trace line: compact, sorted keys (plain json: frames may hold any JSON number)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_digest(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8") + b"\n")
    return "sha256:" + h.hexdigest()


# -- digests -----------------------------------------------------------------------

def touched_files(ws: Workspace, bundles: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                  frames: list[dict[str, Any]]) -> list[str]:
    """Workspace files an operation read: the target, every workspace path in the bundles'
    request/resolution/facts/edits, every document the server was asked or told about, the
    config.  Only files that exist now are listed."""
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

    for bundle in ([bundles] if isinstance(bundles, Mapping) else bundles):
        for key in ("request", "resolution", "facts", "edits"):
            visit(bundle.get(key))
    root_uri = to_uri(ws.root) + "/"
    for fr in frames:
        doc = ((fr.get("msg") or {}).get("params") or {})
        doc = doc.get("textDocument") if isinstance(doc, dict) else None
        uri = doc.get("uri") if isinstance(doc, dict) else None
        if fr.get("dir") == "send" and isinstance(uri, str) and uri.startswith(root_uri):
            found.add(unquote(uri[len(root_uri):]))
    found.update(CONFIG_FILES)
    out = []
    for rel in found:
        norm = workspace_rel(ws, rel)
        if norm is not None and (ws.root / norm).is_file():
            out.append(norm)
    return sorted(set(out))


def workspace_rel(ws: Workspace, rel: str) -> str | None:
    """``rel`` normalized inside the workspace jail, or None (a URI, an absolute path, a path
    that leaves the workspace)."""
    if "://" in rel or rel.startswith("/") or rel in ("", "."):
        return None
    try:
        _, norm = ws.resolve(rel, must_exist=False)
    except LanserError:
        return None
    return norm


def workspace_digest(ws: Workspace, rels: Iterable[str]) -> dict[str, str | None]:
    """rel -> git blob id of the file now (None when it is missing or unreadable)."""
    out: dict[str, str | None] = {}
    for rel in sorted(set(rels)):
        try:
            out[rel] = blob_id((ws.root / rel).read_bytes())
        except OSError:
            out[rel] = None
    return out


def plan_befores(bundles: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """rel -> the blob id the first edit plan (in bundle order) that names the file saw
    before it (None: the plan creates it).  Only an applied plan changes a file, and it
    names the file, so this is the file's content before the bundles' operations."""
    out: dict[str, str | None] = {}
    for bundle in bundles:
        for f in ((bundle.get("edits") or {}).get("files") or []):
            if isinstance(f, dict) and isinstance(f.get("path"), str):
                before = f.get("before")
                out.setdefault(f["path"], before if isinstance(before, str) else None)
    return out


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
    bundles: list[dict[str, Any]]
    end: dict[str, Any]
    git: list[GitAnswer] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cmd(self) -> str:
        return str(self.start.get("cmd"))

    @property
    def selector(self) -> str | None:
        return self.start.get("selector")

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.start.get("args") or {})

    @property
    def trajectory(self) -> bool:
        return self.cmd in TRAJECTORY_CMDS

    @property
    def bundle(self) -> dict[str, Any]:
        """The operation's bundle (a trajectory's last step bundle; {} when it has none)."""
        return self.bundles[-1] if self.bundles else {}

    @property
    def writes(self) -> bool:
        """Whether the operation wrote, or could have written, to the workspace."""
        apply = self.args.get("apply")
        return (self.trajectory or (apply is not None and apply is not False)
                or any((b.get("edits") or {}).get("applied") for b in self.bundles))

    def summary(self) -> dict[str, Any]:
        out = {"n": self.index, "run": self.run, "op": self.op, "cmd": self.cmd, "selector": self.selector,
               "exitCode": self.end.get("exitCode"), "status": self.end.get("status"),
               "bundleId": self.end.get("bundleId"), "frames": len(self.frames)}
        if self.trajectory:
            out["steps"] = len(self.bundles)
        return out


@dataclass
class Run:
    header: dict[str, Any]
    ops: list[Operation] = field(default_factory=list)


def _corrupt(path: str, n: int, why: str) -> ReplayMismatch:
    return ReplayMismatch(f"corrupt trace {path}: line {n}: {why}", details={"line": n})


def git_fields(answer: GitAnswer) -> dict[str, Any]:
    if isinstance(answer, dict):
        return {"dirtyPaths": None, "unreadable": answer["unreadable"]}
    return {"dirtyPaths": answer}


def _is_git_answer(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


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
    run_lines: dict[str, str] = {}          # run id -> its run line as written
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
            run_lines[ev["run"]] = line
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
            current = {"run": run_id, "op": op, "start": ev, "frames": [], "git": [], "env": [], "files": None,
                       "bundles": [], "records": []}
            raw_lines = [line]
            continue
        if current is None or current["run"] != run_id or current["op"] != op:
            raise _corrupt(path, n, f"{kind} event outside its operation (missing op-start)")
        trajectory = current["start"]["cmd"] in TRAJECTORY_CMDS
        if kind == "frame":
            if ev.get("dir") not in ("send", "recv") or not isinstance(ev.get("msg"), dict):
                raise _corrupt(path, n, "frame without dir or msg")
            current["frames"].append({"dir": ev["dir"], "msg": ev["msg"]})
        elif kind == "git":
            if "dirtyPaths" not in ev or not _is_git_answer(ev["dirtyPaths"]):
                raise _corrupt(path, n, "git event without dirtyPaths (a list of paths or null)")
            if "unreadable" in ev:
                if not isinstance(ev["unreadable"], str) or ev["dirtyPaths"] is not None:
                    raise _corrupt(path, n, "git event with a bad 'unreadable' (git's complaint, a string)")
                current["git"].append({"unreadable": ev["unreadable"]})
            else:
                current["git"].append(ev["dirtyPaths"])
        elif kind == "env":
            if not isinstance(ev.get("fact"), str) or "question" not in ev or "answer" not in ev:
                raise _corrupt(path, n, "env event without fact, question or answer")
            current["env"].append({"fact": ev["fact"], "question": ev["question"], "answer": ev["answer"]})
        elif kind == "workspace":
            files = ev.get("files")
            if not isinstance(files, dict) or not all(v is None or isinstance(v, str) for v in files.values()):
                raise _corrupt(path, n, "workspace event without files")
            current["files"] = files
        elif kind == "bundle":
            if current["files"] is None:
                raise _corrupt(path, n, "bundle before the workspace digest")
            bundle = ev.get("bundle")
            if not isinstance(bundle, dict) or "bundleId" not in bundle:
                raise _corrupt(path, n, "bundle event without a bundle")
            if bundle_id(bundle) != bundle.get("bundleId"):
                raise _corrupt(path, n, "the recorded bundle does not match its bundleId")
            if current["bundles"] and not trajectory:
                raise _corrupt(path, n, f"operation {op} ({current['start']['cmd']}) has two bundles")
            current["bundles"].append(bundle)
        elif kind == "record":
            record = ev.get("record")
            if not trajectory:
                raise _corrupt(path, n, f"a record in operation {op}, which is no reward run")
            ids = {b["bundleId"] for b in current["bundles"]}
            if not isinstance(record, dict) or record.get("bundleId") not in ids:
                raise _corrupt(path, n, "record event whose bundleId names no bundle of its operation")
            current["records"].append(record)
        elif kind == "op-end":
            bundles = current["bundles"]
            if not bundles and not trajectory:
                raise _corrupt(path, n, f"operation {op} ends without a bundle")
            if current["files"] is None:
                raise _corrupt(path, n, f"operation {op} ends without a workspace digest")
            if ev.get("check") != check_digest([run_lines[run_id], *raw_lines]):
                raise _corrupt(path, n, f"operation {op}: check digest differs (the trace was edited)")
            if ev.get("bundleId") != (bundles[-1]["bundleId"] if bundles else None):
                raise _corrupt(path, n, f"operation {op}: op-end names another bundle")
            index += 1
            runs[run_id].ops.append(Operation(index, run_id, int(current["op"]), current["start"], current["frames"],
                                              current["files"], bundles, ev, current["git"], current["records"],
                                              current["env"]))
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


def trace_base(ops: Iterable[Operation]) -> dict[str, str | None]:
    """The workspace as the trace began: for every file an operation read or wrote, what
    the first operation that names it saw before it ran (its plans' ``before``, else its
    digest)."""
    base: dict[str, str | None] = {}
    for op in ops:
        seen = dict(op.files)
        seen.update(plan_befores(op.bundles))
        for rel, blob in seen.items():
            base.setdefault(rel, blob)
    return base
