"""The Python SDK: the CLI's operations as methods returning bundle dicts.

    from lanser import SyncLanserClient
    with SyncLanserClient("path/to/repo") as lc:              # in-process: own warm server
        b = lc.definition("src/app.py@L42:C7")
    with SyncLanserClient("path/to/repo", daemon=True) as lc: # through the (started on demand) daemon
        b = lc.references("py://pkg.mod#Class.method")

Every method returns the same bundle the CLI prints with ``--json`` (errors
included, as ``status: "error"`` bundles: no method raises for a failed
request).  In-process clients own a :class:`~lanser.daemon.service.Service`:
one warm server, disk-change checks before every answer, single-flight and a
memo.  Daemon clients keep one connection to the shared daemon, which is
started if absent and outlives the client (``lanser daemon stop`` ends it).

``RewardServiceClient`` (and its asyncio twin) talks to ``lanser serve``, the reward service:
``open_session``, ``step``, ``records``, ``close``, ``score`` (lanser/service/client.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Generic, TypeVar

from .daemon import client as C
from .daemon import protocol as P
from .daemon.paths import Identity, files_for
from .errors import LanserError, LsCrash
from .service.client import AsyncRewardServiceClient, RewardServiceClient, ServiceError

R = TypeVar("R")

__all__ = ["AsyncLanserClient", "AsyncRewardServiceClient", "RewardServiceClient", "ServiceError",
           "SyncLanserClient"]


def _options(workspace: str, server: str, python: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"workspace": workspace, "server": server, "python": python}
    opts.update(extra)
    return opts


def _error_bundle(cmd: str, selector: str | None, args: dict[str, Any], exc: LanserError) -> dict[str, Any]:
    from .engine import error_bundle

    return error_bundle(cmd, selector, args, exc)


class _Operations(Generic[R]):
    """The CLI's commands as methods; ``run`` decides where they execute."""

    def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
            **options: Any) -> R:
        raise NotImplementedError

    def locate(self, selector: str, **options: Any) -> R:
        """Resolve a selector (structural; no server for symbol/ast/anchor selectors)."""
        return self.run("locate", selector, **options)

    def definition(self, selector: str, **options: Any) -> R:
        return self.run("def", selector, **options)

    def references(self, selector: str, **options: Any) -> R:
        """References, declaration included."""
        return self.run("refs", selector, **options)

    def hover(self, selector: str, **options: Any) -> R:
        return self.run("hover", selector, **options)

    def symbols(self, target: str, **options: Any) -> R:
        """Flattened document symbols of a file (path) or of the file a selector names."""
        return self.run("symbols", target, **options)

    def diagnostics(self, target: str | None = None, **options: Any) -> R:
        """Diagnostics of a file, a symbol's range, or (no target) the whole workspace."""
        return self.run("diag", target, **options)

    def prepare_rename(self, selector: str, **options: Any) -> R:
        return self.run("prepare-rename", selector, **options)

    def rename(self, selector: str, new_name: str, *, apply: bool = False, strict: bool = False,
               via_git: bool = False, **options: Any) -> R:
        """Plan (default) or apply a rename through the safety envelope."""
        return self.run("rename", selector, {"newName": new_name, "apply": apply, "strict": strict,
                                             "viaGit": via_git}, **options)

    def actions(self, selector: str, *, kind: str | None = None, apply: int | None = None, **options: Any) -> R:
        """List code actions over the selector's range, or apply the one with index ``apply``."""
        args: dict[str, Any] = {"kind": kind}
        if apply is not None:
            args["apply"] = apply
        return self.run("actions", selector, args, **options)

    def edit(self, selector: str, text: str, *, apply: bool = False, **options: Any) -> R:
        """Replace what the selector resolves to with ``text`` (re-indented); dry run by default."""
        return self.run("edit", selector, {"text": text, "apply": apply}, **options)


class AsyncLanserClient(_Operations[Awaitable[dict[str, Any]]]):
    """Lanser from asyncio code.  Options are the CLI's global options (``index_io``,
    ``timeout``, ``verbose``, ``cursor``, ``allow_dirty``, ``deny_apply_on_ambiguous``,
    ``allow``, ``deny``); each call may override them by keyword."""

    def __init__(self, workspace: str = ".", *, server: str = "pyright", python: str | None = None,
                 daemon: bool = False, cache: bool = True, idle_timeout: float | None = None,
                 **options: Any) -> None:
        self.ident = Identity.for_options(workspace, server, python)
        self.daemon = daemon
        self.cache = cache
        self.idle_timeout = idle_timeout
        self.options = _options(self.ident.workspace, server, self.ident.python, options)
        self._service: Any = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> "AsyncLanserClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
                  **options: Any) -> dict[str, Any]:
        """Any command by its CLI name (``def``, ``refs``, ``prepare-rename`` ...) -> bundle."""
        args = dict(args or {})
        opts = {**self.options, **options}
        try:
            if self.daemon:
                return await self._via_daemon(cmd, selector, args, opts)
            if self._service is None:
                from .daemon.service import Service

                self._service = Service(self.ident.workspace, self.ident.server, self.ident.python,
                                        cache=self.cache)
            return await self._service.run(cmd, selector, args, opts)
        except LanserError as exc:
            return _error_bundle(cmd, selector, args, exc)

    async def _via_daemon(self, cmd: str, selector: str | None, args: dict[str, Any],
                          opts: dict[str, Any]) -> dict[str, Any]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        req = P.encode(P.request(cmd, selector, args, opts))
        async with self._lock:
            for attempt in range(2):
                if self._writer is None:
                    await self._connect()
                assert self._reader is not None and self._writer is not None
                try:
                    self._writer.write(req)
                    await self._writer.drain()
                    line = await self._reader.readline()
                except (OSError, asyncio.IncompleteReadError):
                    line = b""
                if line.endswith(b"\n"):
                    resp = json.loads(line)
                    if isinstance(resp.get("bundle"), dict):
                        return resp["bundle"]
                    err = resp.get("error") or {}
                    raise LsCrash(f"the daemon refused the request: {err.get('code')}: {err.get('message')}")
                await self._disconnect()
                if attempt or P.writes(cmd, args):  # an apply may have landed: do not repeat it
                    raise LsCrash(f"the daemon went away during {cmd}")
        raise AssertionError("unreachable")

    async def _connect(self) -> None:
        files = files_for(self.ident)
        conn = C.connect(files)
        if conn is None:
            await asyncio.to_thread(C.start, self.ident, files, idle_timeout=self.idle_timeout)
            conn = C.connect(files)
            if conn is None:
                raise LsCrash("the daemon does not accept connections")
        conn.sock.setblocking(False)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=conn.sock, limit=P.MAX_LINE)

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def status(self) -> dict[str, Any] | None:
        """The daemon's status (daemon clients), or the in-process service's counters."""
        if self.daemon:
            return await asyncio.to_thread(C.status, files_for(self.ident))
        return self._service.status() if self._service is not None else None

    async def close(self) -> None:
        """Stop the in-process server, or drop the daemon connection (the daemon keeps running)."""
        await self._disconnect()
        if self._service is not None:
            service, self._service = self._service, None
            await service.close()


class SyncLanserClient(_Operations[dict[str, Any]]):
    """Lanser from ordinary code: the same methods, blocking.  In-process clients run their
    server on a private event loop; daemon clients speak to the socket directly."""

    def __init__(self, workspace: str = ".", *, server: str = "pyright", python: str | None = None,
                 daemon: bool = False, cache: bool = True, idle_timeout: float | None = None,
                 **options: Any) -> None:
        self._async = AsyncLanserClient(workspace, server=server, python=python, daemon=daemon, cache=cache,
                                        idle_timeout=idle_timeout, **options)
        self.daemon = daemon
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: C.Connection | None = None

    def __enter__(self) -> "SyncLanserClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def options(self) -> dict[str, Any]:
        return self._async.options

    def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
            **options: Any) -> dict[str, Any]:
        if not self.daemon:
            return self._run_async(self._async.run(cmd, selector, args, **options))
        args = dict(args or {})
        try:
            return self._via_daemon(cmd, selector, args, {**self.options, **options})
        except LanserError as exc:
            return _error_bundle(cmd, selector, args, exc)

    def _run_async(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _via_daemon(self, cmd: str, selector: str | None, args: dict[str, Any],
                    opts: dict[str, Any]) -> dict[str, Any]:
        req = P.request(cmd, selector, args, opts)
        ident = self._async.ident
        for attempt in range(2):
            if self._conn is None:
                files = files_for(ident)
                self._conn = C.connect(files)
                if self._conn is None:
                    C.start(ident, files, idle_timeout=self._async.idle_timeout)
                    self._conn = C.connect(files)
                if self._conn is None:
                    raise LsCrash("the daemon does not accept connections")
            resp = self._conn.call(req)
            if resp is not None:
                if isinstance(resp.get("bundle"), dict):
                    return resp["bundle"]
                err = resp.get("error") or {}
                raise LsCrash(f"the daemon refused the request: {err.get('code')}: {err.get('message')}")
            self._conn.close()
            self._conn = None
            if attempt or P.writes(cmd, args):
                raise LsCrash(f"the daemon went away during {cmd}")
        raise AssertionError("unreachable")

    def status(self) -> dict[str, Any] | None:
        if self.daemon:
            return C.status(files_for(self._async.ident))
        return self._async._service.status() if self._async._service is not None else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._loop is not None:
            loop, self._loop = self._loop, None
            try:
                loop.run_until_complete(self._async.close())
            finally:
                loop.close()
