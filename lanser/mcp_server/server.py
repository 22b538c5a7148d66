"""Running the MCP server: stdio (one agent launches it) or streamable HTTP (many agents share it).

The server's own resources (daemon connections, the reward runners' servers)
live as long as the process, not as long as one MCP session: every HTTP
session shares them.  They are released on every way out: the client closing
stdin, SIGTERM, SIGINT (Ctrl-C).  The daemon is left running for its other
clients (``lanser daemon stop`` ends it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from .backend import Backend
from .rewards import RewardDesk
from .settings import McpSettings

log = logging.getLogger("lanser.mcp")

HTTP_PATH = "/mcp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(settings: McpSettings, http: tuple[str, int] | None = None) -> int:
    """Serve until the client goes away or a signal arrives; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="lanser mcp: %(levelname)s %(message)s")
    logging.getLogger("lanser.mcp").setLevel(logging.INFO)
    return asyncio.run(_serve(settings, http))


async def _serve(settings: McpSettings, http: tuple[str, int] | None) -> int:
    from .tools import build_server

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    leaving = False
    signalled: list[int] = []

    def stop() -> None:
        if not leaving:  # once cleaning up, nothing interrupts the clean-up
            task.cancel()

    def on_signal(signum: int, frame: Any) -> None:
        signalled.append(signum)
        loop.call_soon_threadsafe(stop)

    # signal.signal (not loop.add_signal_handler): uvicorn saves and restores handlers that way.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    backend = Backend(settings)
    desk = RewardDesk(settings)
    warm = asyncio.ensure_future(backend.warm())  # the daemon starts while the client connects
    try:
        server = build_server(settings, backend, desk)
        if http is None:
            sys.stderr.write(f"lanser mcp: serving {server.name} over stdio, workspace {settings.workspace}\n")
            sys.stderr.flush()
            await server.run_stdio_async()
        else:
            await _serve_http(server, *http)
    except asyncio.CancelledError:
        if not signalled:
            raise
        if hasattr(task, "uncancel"):  # Python 3.11+
            task.uncancel()
    finally:
        leaving = True
        warm.cancel()
        with contextlib.suppress(BaseException):
            await warm
        await desk.close()
        await backend.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 130 if signal.SIGINT in signalled and signal.SIGTERM not in signalled else 0


async def _serve_http(server: Any, host: str, port: int) -> None:
    import uvicorn

    from ..net import listen

    sock = listen(host, port, backlog=128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    # DNS-rebinding protection (Host header checks) is on for loopback hosts.
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    userver = uvicorn.Server(config)
    if host not in LOOPBACK:
        log.warning("listening on %s, which is not a loopback address: anyone who can reach it can read "
                    "and write the workspace (there is no authentication)", host)
    sys.stderr.write(f"lanser mcp: serving {server.name} over streamable HTTP at http://{shown}:{bound}{HTTP_PATH}\n")
    sys.stderr.flush()
    try:
        await userver.serve(sockets=[sock])
    finally:
        sock.close()
