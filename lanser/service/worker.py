"""A worker: the SharedRunners of one process (or one Ray actor), driven by the router.

Each runner is one warm server on one base (lanser/rewards/sessions.py); a worker may hold
several.  The router sends small requests and gets an envelope back:

    {"ok": true, "result": ...}
    {"ok": false, "kind": "lanser" | "runner" | "internal", "error": {code, exitCode, message, ...}}

``lanser``: the request's own error (a base that cannot be materialised, a server that cannot
start).  ``runner``: the runner cannot be trusted any more -- its server died or was restarted
under a step, a step raised, the session is unknown -- and has been dropped; the router starts
another and rebuilds its sessions by replaying their steps, so no record is ever taken from a
server whose history is not exactly the session's steps.

Methods: ``start_runner``, ``open``, ``step``, ``replay``, ``close``, ``drop_runner``, ``stats``,
``shutdown``.  Records leave a worker as canonical JSON text (the CLI's exact line), so the
router stores and returns bytes it never re-encodes.

As a process (``python -m lanser.service.worker CONFIG_JSON``) it reads one JSON request a line
on stdin and writes one reply a line on what was its stdout; anything else that writes to
stdout goes to stderr instead.  It exits when stdin closes (the router is gone) or on SIGTERM,
closing its servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any, Awaitable, Callable

import orjson

from ..engine import Options
from ..errors import InternalError, LanserError, LsCrash
from ..output import json_line
from ..rewards.sessions import SharedRunner
from .bases import base_dir
from .requests import BaseSpec, parse_options


class RunnerFailed(Exception):
    """The runner was dropped; carries the error that made it untrustworthy."""

    def __init__(self, error: LanserError) -> None:
        super().__init__(error.message)
        self.error = error


def rss_bytes(pid: int | None) -> int:
    """Resident memory of ``pid`` (0 when unknown or gone)."""
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_rss(pid: int | None) -> int:
    """RSS of ``pid`` and its descendants (a server and anything it spawned)."""
    if pid is None:
        return 0
    total, todo, seen = 0, [pid], set()
    while todo and len(seen) < 256:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += rss_bytes(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return total


def _server_pid(shared: SharedRunner) -> int | None:
    session = shared.engine.session
    return session.pid if session is not None else None


def _server_alive(shared: SharedRunner) -> bool:
    session = shared.engine.session
    client = session.client if session is not None else None
    pid = session.pid if session is not None else None
    if client is None or client.exited.is_set() or pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:  # a killed child the event loop has not reaped yet is a zombie: dead all the same
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _restarts(shared: SharedRunner) -> int:
    session = shared.engine.session
    return session.restarts if session is not None else -1


class WorkerCore:
    """The runners of one worker and the methods the router calls (see the module docstring)."""

    def __init__(self, *, cache_dir: str, python: str | None = None, server: str = "pyright",
                 timeout: float = 30.0) -> None:
        self.cache_dir = cache_dir
        self.python = python
        self.server = server
        self.timeout = timeout
        self.runners: dict[str, SharedRunner] = {}
        self.tasks: dict[str, set[asyncio.Task[Any]]] = {}
        self.methods: dict[str, Callable[..., Awaitable[Any]]] = {
            "start_runner": self.start_runner, "open": self.open, "step": self.step, "replay": self.replay,
            "close": self.close, "drop_runner": self.drop_runner, "stats": self.stats,
            "shutdown": self.shutdown, "ping": self.ping}

    async def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one request and wrap its outcome in an envelope (never raises but for cancellation)."""
        fn = self.methods.get(method)
        if fn is None:
            return {"ok": False, "kind": "internal",
                    "error": InternalError(f"unknown worker method {method!r}").to_json()}
        runner = params.get("runner") if method not in ("drop_runner", "start_runner") else None
        task = asyncio.current_task()
        if runner is not None and task is not None:
            self.tasks.setdefault(runner, set()).add(task)
        try:
            return {"ok": True, "result": await fn(**params)}
        except RunnerFailed as exc:
            return {"ok": False, "kind": "runner", "error": exc.error.to_json()}
        except LanserError as exc:
            return {"ok": False, "kind": "lanser", "error": exc.to_json()}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say which, keep serving
            return {"ok": False, "kind": "internal",
                    "error": InternalError(f"internal error: {type(exc).__name__}: {exc}").to_json()}
        finally:
            if runner is not None and task is not None:
                self.tasks.get(runner, set()).discard(task)

    # -- runners ------------------------------------------------------------------------
    async def start_runner(self, runner: str, base: dict[str, Any]) -> dict[str, Any]:
        spec = BaseSpec.from_json(base)
        path = await asyncio.get_running_loop().run_in_executor(None, base_dir, spec, self.cache_dir)
        shared = SharedRunner(str(path), engine_options=Options(
            workspace=str(path), server=self.server, python=self.python, timeout=self.timeout),
            keep_history=False)  # the router keeps each session's steps and records
        self.runners[runner] = shared
        try:
            await shared.start()
        except BaseException:
            self.runners.pop(runner, None)
            with contextlib.suppress(Exception):
                await shared.aclose()
            raise
        return {"serverPid": _server_pid(shared), "workerPid": os.getpid()}

    def _runner(self, runner: str) -> SharedRunner:
        shared = self.runners.get(runner)
        if shared is None:
            raise RunnerFailed(LsCrash(f"runner {runner} is not on this worker (dropped or never started)"))
        return shared

    async def _fail(self, runner: str, error: LanserError) -> RunnerFailed:
        await self.drop_runner(runner, _except=asyncio.current_task())
        return RunnerFailed(error)

    async def _run_step(self, runner: str, shared: SharedRunner, session: str, step: Any) -> str:
        if not _server_alive(shared):
            raise await self._fail(runner, LsCrash("the language server is gone; the runner is replaced"))
        restarts = _restarts(shared)
        try:
            record = await shared.step(session, step)
        except asyncio.CancelledError:
            raise
        except LanserError as exc:
            raise await self._fail(runner, exc) from None
        except Exception as exc:
            raise await self._fail(runner, InternalError(f"internal error in a step: {type(exc).__name__}: "
                                                         f"{exc}")) from None
        if _restarts(shared) != restarts or not _server_alive(shared):
            raise await self._fail(runner, LsCrash("the language server crashed during the step; the runner "
                                                   "is replaced and its sessions replayed"))
        return json_line(record)

    async def open(self, runner: str, session: str, options: dict[str, Any]) -> dict[str, Any]:
        shared = self._runner(runner)
        if session in shared.sessions:
            shared.close(session)
        shared.open(session, parse_options(options))
        return {}

    async def step(self, runner: str, session: str, step: dict[str, Any]) -> dict[str, Any]:
        shared = self._runner(runner)
        if session not in shared.sessions:
            raise await self._fail(runner, LsCrash(f"session {session} is not on runner {runner}"))
        return {"record": await self._run_step(runner, shared, session, step)}

    async def replay(self, runner: str, session: str, options: dict[str, Any],
                     steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Open ``session`` afresh on ``runner`` and run its steps; their records."""
        await self.open(runner, session, options)
        shared = self._runner(runner)
        return {"records": [await self._run_step(runner, shared, session, s) for s in steps]}

    async def close(self, runner: str, session: str) -> dict[str, Any]:
        shared = self.runners.get(runner)
        if shared is not None and session in shared.sessions:
            shared.close(session)
        return {}

    async def drop_runner(self, runner: str, _except: Any = None) -> dict[str, Any]:
        """Stop a runner: cancel what runs on it, close its server."""
        shared = self.runners.pop(runner, None)
        for task in list(self.tasks.pop(runner, set())):
            if task is not _except:
                task.cancel()
        if shared is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(shared.aclose(), 10)
        return {}

    async def stats(self) -> dict[str, Any]:
        runners = {}
        for rid, shared in list(self.runners.items()):
            pid = _server_pid(shared)
            runners[rid] = {"serverPid": pid, "serverRss": tree_rss(pid), "alive": _server_alive(shared),
                            "sessions": len(shared.sessions)}
        return {"pid": os.getpid(), "rss": rss_bytes(os.getpid()), "runners": runners}

    async def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def shutdown(self) -> dict[str, Any]:
        for rid in list(self.runners):
            await self.drop_runner(rid)
        return {}


# -- the worker process ----------------------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the router dies, however it dies."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _serve(core: WorkerCore, out: Any) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks: set[asyncio.Task[Any]] = set()

    def reply(msg: dict[str, Any]) -> None:
        out.write(orjson.dumps(msg) + b"\n")
        out.flush()

    async def handle(msg: dict[str, Any]) -> None:
        try:
            env = await core.dispatch(str(msg.get("method")), dict(msg.get("params") or {}))
        except asyncio.CancelledError:
            env = {"ok": False, "kind": "runner", "error": LsCrash("the step was cancelled").to_json()}
        reply({"id": msg.get("id"), **env})

    async def read() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            task = asyncio.create_task(handle(msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    reading = asyncio.create_task(read())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for t in (reading, stopping, *tasks):
        t.cancel()
    await core.shutdown()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = orjson.loads(argv[0]) if argv else {}
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    core = WorkerCore(cache_dir=config["cacheDir"], python=config.get("python"),
                      server=config.get("server", "pyright"), timeout=float(config.get("timeout", 30.0)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(core, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
