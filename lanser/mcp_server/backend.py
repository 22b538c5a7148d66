"""Where the navigation and mutation tools run: the shared daemon, through the SDK.

Every MCP session of every ``lanser mcp`` process started on one workspace (and
every CLI call and SDK client with ``daemon=True``) reaches the same daemon, so
they share one warm language server; an edit one of them applies through the
daemon is on disk, and the daemon looks at the disk before every answer, so the
others' next queries see it.  The daemon is started if none runs
(:class:`~lanser.sdk.AsyncLanserClient` with ``daemon=True`` does that on
connect) and outlives this server: other clients may be using it; it exits
after its idle timeout or on ``lanser daemon stop``.

Requests are spread over a few connections so that concurrent tool calls (HTTP
sessions) are not queued behind each other on this side; the daemon answers
memo hits at once and serializes what needs its server.  With
``--daemon never`` one in-process :class:`~lanser.daemon.service.Service`
(through the same SDK class) is shared by every session of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ..sdk import AsyncLanserClient
from .settings import McpSettings

log = logging.getLogger("lanser.mcp")

MAX_CONNECTIONS = 4


class Backend:
    def __init__(self, settings: McpSettings) -> None:
        self.settings = settings
        self._idle: list[AsyncLanserClient] = []
        self._all: list[AsyncLanserClient] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS if settings.daemon else 1)

    def _client(self) -> AsyncLanserClient:
        s = self.settings
        return AsyncLanserClient(s.workspace, server=s.server, python=s.python, daemon=s.daemon,
                                 idle_timeout=s.idle_timeout, **s.request_options())

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncLanserClient]:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            if client is None:
                client = self._client()
                self._all.append(client)
            try:
                yield client
            finally:
                self._idle.append(client)

    async def run(self, cmd: str, selector: str | None, args: dict[str, Any] | None = None,
                  **options: Any) -> dict[str, Any]:
        """One command -> its bundle (errors included, as ``status: "error"`` bundles)."""
        async with self._connection() as client:
            return await client.run(cmd, selector, args or {}, **options)

    async def warm(self) -> None:
        """Start the daemon now (if none runs) so the first tool call finds a warm server."""
        if not self.settings.daemon:
            return
        from ..daemon import client as C
        from ..daemon.paths import files_for

        ident = self._client().ident
        try:
            await asyncio.to_thread(C.start, ident, files_for(ident), idle_timeout=self.settings.idle_timeout)
        except Exception as exc:  # the first tool call tries again and reports it as a bundle
            log.warning("could not start the daemon yet: %s", exc)

    async def daemon_status(self) -> dict[str, Any] | None:
        async with self._connection() as client:
            return await client.status()

    async def close(self) -> None:
        """Drop the connections (the daemon keeps running) or stop the in-process server."""
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
