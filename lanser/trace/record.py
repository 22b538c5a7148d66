"""Recording: every operation of a run appended to a JSON Lines trace (``--trace-file``).

The events are those of :mod:`lanser.trace.format`.  Frames (and git's answers)
are buffered and an operation is appended in one write when it finishes, so
concurrent ``lanser`` processes never interleave lines.
"""

from __future__ import annotations

import os
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..bundles.paths import to_uri
from ..errors import FsPermissions, LanserError
from ..workspace import CONFIG_FILES, Workspace
from .format import (
    LANSER_DIR,
    TRACE_FORMAT,
    GitAnswer,
    check_digest,
    event_line,
    git_fields,
    plan_befores,
    touched_files,
    workspace_digest,
)

if TYPE_CHECKING:
    from ..engine import Engine


# -- git answers -------------------------------------------------------------------

_GIT_LISTENERS: "weakref.WeakSet[Recorder]" = weakref.WeakSet()


def _observe_git() -> None:
    """Route every git work-tree query of this process through the live recorders.

    ``lanser.edits.gitstate.dirty_paths`` is the one place Lanser asks git about the
    work tree (``git_state``, ``check_clean``); the wrapper is installed once and
    only forwards."""
    from ..edits import gitstate

    if getattr(gitstate.dirty_paths, "_lanser_observed", False):
        return
    original = gitstate.dirty_paths

    def observed(ws: Workspace) -> list[str] | None:
        try:
            answer = original(ws)
        except gitstate.GitUnreadable as exc:
            for rec in list(_GIT_LISTENERS):
                rec.git(None, unreadable=exc.git_message)
            raise
        for rec in list(_GIT_LISTENERS):
            rec.git(answer)
        return answer

    observed._lanser_observed = True  # type: ignore[attr-defined]
    gitstate.dirty_paths = observed


# -- recording -------------------------------------------------------------------

class Recorder:
    """Collects one run's frames (and git answers) and writes each finished operation.

    Frames are buffered and an operation is appended in one write when it
    finishes, so concurrent ``lanser`` processes never interleave lines.
    """

    def __init__(self, path: str | os.PathLike[str], engine: Engine) -> None:
        self.path = Path(path)
        self.engine = engine
        self.run = uuid.uuid4().hex
        self.op = 0
        self.frames: list[dict[str, Any]] = []
        self._env: list[dict[str, Any]] = []
        self._git: list[GitAnswer] = []
        self._header = False
        self._run_line = ""  # this run's run line, as written (part of every operation's check)
        # Whether .lanser/ exists as the run begins: applying checks more before creating it,
        # so a replay in a scratch copy must start from the same state.
        self.lanser_dir = os.path.lexists(engine.ws.root / LANSER_DIR)
        try:
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise FsPermissions(f"cannot write trace file {os.fspath(path)!r}: {exc.strerror or exc}") from None
        _observe_git()
        _GIT_LISTENERS.add(self)
        engine.fact_listeners.append(self.env)

    def frame(self, direction: str, msg: dict[str, Any]) -> None:
        """The client's frame hook: every JSON-RPC message, both directions."""
        self.frames.append({"dir": direction, "msg": msg})

    def env(self, fact: str, question: Any, answer: Any) -> None:
        """One fact read from the environment (the engine tells every fact it reads)."""
        self._env.append({"fact": fact, "question": question, "answer": answer})

    def git(self, dirty_paths: list[str] | None, *, unreadable: str | None = None) -> None:
        """One answer of git about the work tree (None: not a git work tree; ``unreadable``:
        git refused to read the repository, with this complaint)."""
        if unreadable is not None:
            self._git.append({"unreadable": unreadable})
        else:
            self._git.append(list(dirty_paths) if dirty_paths is not None else None)

    def finish(self, cmd: str, selector: str | None, args: dict[str, Any], bundle: dict[str, Any]) -> None:
        """Append the operation (start, frames, workspace digest, bundle, end) to the trace."""
        ws = self.engine.ws
        files = workspace_digest(ws, touched_files(ws, bundle, self.frames))
        self.write_operation(cmd, selector, args, files, [bundle], [], {
            "exitCode": bundle["meta"]["exit_code"], "status": bundle["status"], "bundleId": bundle["bundleId"]})

    def trajectory(self, cmd: str, args: dict[str, Any]) -> "Trajectory":
        """Start recording a trajectory operation (``reward``); see :class:`Trajectory`."""
        return Trajectory(self, cmd, args)

    def write_operation(self, cmd: str, selector: str | None, args: dict[str, Any], files: dict[str, str | None],
               bundles: list[dict[str, Any]], records: list[dict[str, Any]], end: dict[str, Any]) -> None:
        self.op += 1
        frames, self.frames = self.frames, []
        answers, self._git = self._git, []
        facts, self._env = self._env, []
        ws = self.engine.ws
        base = {"run": self.run, "op": self.op}
        lines: list[str] = []
        if not self._header:
            env = (bundles[0].get("environment") if bundles else None) or self.engine.environment()
            self._run_line = event_line({"event": "run", "format": TRACE_FORMAT, "run": self.run,
                                    "root": str(ws.root), "rootUri": to_uri(ws.root), "environment": env,
                                    "lanserDir": self.lanser_dir})
            lines.append(self._run_line)
            self._header = True
        op_lines = [event_line({"event": "op-start", **base, "cmd": cmd, "selector": selector, "args": args,
                           "options": self.engine.options.to_json()})]
        op_lines += [event_line({"event": "frame", **base, **fr}) for fr in frames]
        op_lines += [event_line({"event": "git", **base, **git_fields(a)}) for a in answers]
        op_lines += [event_line({"event": "env", **base, **f}) for f in facts]
        op_lines.append(event_line({"event": "workspace", **base, "files": files}))
        op_lines += [event_line({"event": "bundle", **base, "bundle": b}) for b in bundles]
        op_lines += [event_line({"event": "record", **base, "record": r}) for r in records]
        # The run line is checked with every operation, so its root, environment and
        # .lanser/ state cannot be edited either.
        check = check_digest([self._run_line, *op_lines])
        op_lines.append(event_line({"event": "op-end", **base, **end, "check": check}))
        text = "".join(line + "\n" for line in lines + op_lines)
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise FsPermissions(f"cannot write trace file {self.path}: {exc.strerror or exc}") from None


class Trajectory:
    """One ``lanser reward`` run as a single trace operation.

    Call :meth:`begin` before the runner starts (it takes the base digest: every
    Python file and the configuration as they are before step 1), give
    :meth:`bundle` to the runner's ``on_bundle`` and pass the printed records
    through :meth:`tee`, then :meth:`finish` after the engine closed (so the
    shutdown frames are in).
    """

    def __init__(self, recorder: Recorder, cmd: str, args: dict[str, Any]) -> None:
        self.recorder = recorder
        self.cmd = cmd
        self.args = args
        self.base: dict[str, str | None] = {}
        self.bundles: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []

    def begin(self) -> None:
        ws = self.recorder.engine.ws
        self.base = workspace_digest(ws, [*ws.python_files(), *CONFIG_FILES])

    def bundle(self, bundle: dict[str, Any]) -> None:
        self.bundles.append(bundle)

    def tee(self, emit: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
        """``emit`` that also keeps each record for the trace."""
        def both(record: dict[str, Any]) -> None:
            self.records.append(record)
            emit(record)
        return both

    def digest(self) -> dict[str, str | None]:
        """The workspace as the run began: the snapshot taken by :meth:`begin`, then what the
        steps' plans saw before them, then (for files no plan names) the file now."""
        rec = self.recorder
        ws = rec.engine.ws
        files = workspace_digest(ws, touched_files(ws, self.bundles, rec.frames))
        files.update(plan_befores(self.bundles))
        files.update(self.base)
        return files

    def finish(self, exit_code: int, error: LanserError | None = None) -> None:
        end: dict[str, Any] = {"exitCode": exit_code, "status": "ok" if exit_code == 0 else "error",
                               "bundleId": self.bundles[-1]["bundleId"] if self.bundles else None,
                               "steps": len(self.bundles)}
        if error is not None:
            end["error"] = error.to_json()
        self.recorder.write_operation(self.cmd, None, self.args, self.digest(), self.bundles, self.records, end)


def trajectory_args(steps_text: str, options: Any) -> dict[str, Any]:
    """What a reward operation records to be replayed: the STEPS text as read and the
    scoring options (weights unrounded)."""
    w = options.weights
    return {"steps": steps_text,
            "options": {"severities": list(options.severities), "scope": options.scope,
                        "diagTerm": options.diag_term,
                        "weights": {"alpha": w.alpha, "beta": w.beta, "gamma": w.gamma},
                        "clip": options.clip, "aggregate": options.aggregate, "inMemory": options.in_memory,
                        "resetBetween": options.reset_between, "byFile": options.by_file,
                        "analyzers": list(options.analyzers)}}
