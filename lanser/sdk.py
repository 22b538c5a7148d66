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
from typing import Any, Awaitable, Generic, TypeVar

from .bundles.envelope import error_bundle
from .daemon import client as C
from .daemon.paths import Identity, files_for
from .errors import LanserError
from .options import DEFAULT_SERVER
from .service.client import AsyncRewardServiceClient, RewardServiceClient, ServiceError

R = TypeVar("R")

__all__ = ["AsyncLanserClient", "AsyncRewardServiceClient", "RewardServiceClient", "ServiceError",
           "SyncLanserClient"]


def _options(workspace: str, server: str, python: str | None, extra: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"workspace": workspace, "server": server, "python": python}
    opts.update(extra)
    return opts


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

    def __init__(self, workspace: str = ".", *, server: str = DEFAULT_SERVER, python: str | None = None,
                 daemon: bool = False, cache: bool = True, idle_timeout: float | None = None,
                 **options: Any) -> None:
        self.ident = Identity.for_options(workspace, server, python)
        self.daemon = daemon
        self.cache = cache
        self.idle_timeout = idle_timeout
        self.options = _options(self.ident.workspace, server, self.ident.python, options)
        self._service: Any = None
        self.link: C.DaemonLink | None = None
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
            return error_bundle(cmd, selector, args, exc)

    def daemon_link(self) -> C.DaemonLink:
        """Daemon clients' link: the one request loop (lanser/daemon/client.py), which starts
        the daemon when none runs and keeps its connection."""
        if self.link is None:
            self.link = C.DaemonLink(self.ident, files_for(self.ident), "require", keep=True,
                                     idle_timeout=self.idle_timeout)
        return self.link

    async def _via_daemon(self, cmd: str, selector: str | None, args: dict[str, Any],
                          opts: dict[str, Any]) -> dict[str, Any]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one request at a time on the link's connection
            bundle = await asyncio.to_thread(self.daemon_link().bundle, cmd, selector, args, opts)
        assert bundle is not None  # require mode never falls back
        return bundle

    async def status(self) -> dict[str, Any] | None:
        """The daemon's status (daemon clients), or the in-process service's counters."""
        if self.daemon:
            return await asyncio.to_thread(C.status, files_for(self.ident))
        return self.service_status()

    def service_status(self) -> dict[str, Any] | None:
        """The in-process service's counters (None before the first request)."""
        return self._service.status() if self._service is not None else None

    async def close(self) -> None:
        """Stop the in-process server, or drop the daemon connection (the daemon keeps running)."""
        if self.link is not None:
            self.link.close()
        if self._service is not None:
            service, self._service = self._service, None
            await service.close()


class SyncLanserClient(_Operations[dict[str, Any]]):
    """Lanser from ordinary code: the same methods, blocking.  In-process clients run their
    server on a private event loop; daemon clients speak to the socket directly."""

    def __init__(self, workspace: str = ".", *, server: str = DEFAULT_SERVER, python: str | None = None,
                 daemon: bool = False, cache: bool = True, idle_timeout: float | None = None,
                 **options: Any) -> None:
        self._async = AsyncLanserClient(workspace, server=server, python=python, daemon=daemon, cache=cache,
                                        idle_timeout=idle_timeout, **options)
        self.daemon = daemon
        self._loop: asyncio.AbstractEventLoop | None = None

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
            bundle = self._async.daemon_link().bundle(cmd, selector, args, {**self.options, **options})
        except LanserError as exc:
            return error_bundle(cmd, selector, args, exc)
        assert bundle is not None  # require mode never falls back
        return bundle

    def _run_async(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def status(self) -> dict[str, Any] | None:
        if self.daemon:
            return C.status(files_for(self._async.ident))
        return self._async.service_status()

    def close(self) -> None:
        if self._async.link is not None:
            self._async.link.close()
        if self._loop is not None:
            loop, self._loop = self._loop, None
            try:
                loop.run_until_complete(self._async.close())
            finally:
                loop.close()
