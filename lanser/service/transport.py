"""The router's handle on a worker: a child process speaking JSON lines, or a Ray actor.

Both give the same three things: ``await start()``, ``await call(method, params, timeout)``
returning the worker's envelope (lanser/service/worker.py), and ``await stop()`` / ``kill()``.
A worker that is gone makes every pending and later call raise :class:`WorkerLost`, and the
router is told once (``on_lost``) so it can rebuild the sessions that lived there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from typing import Any, Callable

import orjson


class WorkerLost(Exception):
    """The worker process or actor is gone."""


class WorkerHandle:
    """What the pool needs from a worker."""

    id: str
    pid: int | None = None
    alive: bool = False
    kind: str = "?"

    async def start(self) -> None:
        raise NotImplementedError

    async def call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class ProcessWorker(WorkerHandle):
    """``python -m lanser.service.worker`` as a child process (see the worker's docstring)."""

    kind = "process"

    def __init__(self, wid: str, config: dict[str, Any], on_lost: Callable[["WorkerHandle"], Any]) -> None:
        self.id = wid
        self.config = config
        self.on_lost = on_lost
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.reader: asyncio.Task[None] | None = None
        self._lost_told = False

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lanser.service.worker", orjson.dumps(self.config).decode(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 30)
        self.pid = self.proc.pid
        self.alive = True
        self.reader = asyncio.create_task(self._read())
        await self.call("ping", {}, timeout=120)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                try:
                    msg = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                fut = self.pending.pop(msg.pop("id", None), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except (asyncio.CancelledError, ConnectionError, ValueError):
            pass
        finally:
            self._lost()

    def _lost(self) -> None:
        self.alive = False
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(WorkerLost(f"worker {self.id} (pid {self.pid}) is gone"))
        if not self._lost_told:
            self._lost_told = True
            self.on_lost(self)

    async def call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if not self.alive or self.proc is None or self.proc.stdin is None:
            raise WorkerLost(f"worker {self.id} is gone")
        n = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        try:
            self.proc.stdin.write(orjson.dumps({"id": n, "method": method, "params": params}) + b"\n")
            await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.pending.pop(n, None)
            raise WorkerLost(f"worker {self.id} is gone: {exc}") from None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        finally:
            self.pending.pop(n, None)

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            self.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.reader, 5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)


__all__ = ["ProcessWorker", "WorkerHandle", "WorkerLost"]
