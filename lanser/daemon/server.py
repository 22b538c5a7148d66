"""The daemon process: a Unix socket in front of a :class:`~lanser.daemon.service.Service`.

Run by ``lanser daemon start`` (or on demand) as
``python -m lanser.daemon.server --workspace DIR ...``.  Lifetime rules:

* it holds an exclusive ``flock`` on ``<key>.lock`` as long as it lives, so a
  second daemon for the same identity refuses to start and anyone can tell a
  stale socket (lock free) from a live one;
* the socket is created 0600 in a 0700 directory, and every connection's peer
  credentials (``SO_PEERCRED``) are checked: another uid is refused;
* it exits after ``--idle-timeout`` seconds without a request (0: never), on
  ``$stop``, SIGTERM or SIGINT, removing its socket and meta file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from typing import Any

from ..fsutil import write_atomic
from ..options import DEFAULT_SERVER
from . import protocol as P
from .paths import DaemonFiles, Identity, files_for

log = logging.getLogger("lanser.daemon")

DEFAULT_IDLE_TIMEOUT = 900.0


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class DaemonServer:
    def __init__(self, ident: Identity, files: DaemonFiles, idle_timeout: float, cache: bool = True) -> None:
        from .service import Service  # heavy: the engine, pygls, lsprotocol

        self.ident = ident
        self.files = files
        self.idle_timeout = idle_timeout
        self.service = Service(ident.workspace, ident.server, ident.python, cache=cache)
        self.started = time.time()
        self.last_activity = time.monotonic()
        self.busy = 0
        self.connections = 0
        self.refused = 0
        self.stop_event = asyncio.Event()
        self._sock_ino: int | None = None

    # -- lifecycle ------------------------------------------------------------------
    async def serve(self, ready_fd: int | None) -> int:
        lock_fd = os.open(self.files.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _ready(ready_fd, "busy")
            os.close(lock_fd)
            return 0
        server: asyncio.AbstractServer | None = None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.files.socket)  # we hold the lock: any socket here is stale
            old = os.umask(0o177)
            try:
                server = await asyncio.start_unix_server(self._connection, path=str(self.files.socket),
                                                         limit=P.MAX_LINE)
            finally:
                os.umask(old)
            os.chmod(self.files.socket, 0o600)
            self._sock_ino = os.stat(self.files.socket).st_ino
            self._write_meta()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
            try:
                await self.service.warm()
            except Exception as exc:  # requests will report the failure as bundles
                log.error("could not start the server: %s", exc)
            _ready(ready_fd, "ok")
            ready_fd = None
            watchdog = asyncio.ensure_future(self._idle_watch())
            await self.stop_event.wait()
            watchdog.cancel()
        except Exception as exc:
            _ready(ready_fd, f"error: {type(exc).__name__}: {exc}")
            raise
        finally:
            await self._cleanup(server)
            os.close(lock_fd)  # releases the lock last: until now we own the files
        return 0

    async def _cleanup(self, server: asyncio.AbstractServer | None) -> None:
        if server is not None:
            server.close()
        with contextlib.suppress(OSError):
            if self._sock_ino is not None and os.stat(self.files.socket).st_ino == self._sock_ino:
                os.unlink(self.files.socket)
        with contextlib.suppress(OSError):
            os.unlink(self.files.meta)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.service.close(), 20)

    def _write_meta(self) -> None:
        meta = {"pid": os.getpid(), "protocol": P.PROTOCOL_VERSION, "identity": self.ident.to_json(),
                "socket": str(self.files.socket), "idleTimeout": self.idle_timeout, "started": self.started}
        write_atomic(self.files.meta, json.dumps(meta).encode(), mode=0o600)

    async def _idle_watch(self) -> None:
        if self.idle_timeout <= 0:
            return
        while not self.stop_event.is_set():
            idle = time.monotonic() - self.last_activity
            if self.busy == 0 and idle >= self.idle_timeout:
                log.info("idle for %.0fs; exiting", idle)
                self.stop_event.set()
                return
            await asyncio.sleep(max(0.05, min(self.idle_timeout - idle, 5.0)) if self.busy == 0 else 1.0)

    # -- connections ----------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            uid = peer_uid(sock)
        except OSError:
            uid = -1
        if uid != os.getuid():
            self.refused += 1
            log.warning("refused a connection from uid %s", uid)
            with contextlib.suppress(Exception):
                writer.write(P.encode(P.error("E/FS_PERMISSIONS",
                                              f"connection from uid {uid} refused: this daemon serves "
                                              f"uid {os.getuid()} only")))
                await writer.drain()
            writer.close()
            return
        self.connections += 1
        self.busy += 1
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(P.encode(P.error("E/BAD_REQUEST", "request line too long")))
                    break
                if not line:
                    break
                writer.write(await self._dispatch(line))
                await writer.drain()
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            self.busy -= 1
            self.last_activity = time.monotonic()
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, line: bytes) -> bytes:
        try:
            req = P.decode(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("a request is a JSON object with a string 'cmd'")
        except ValueError as exc:
            return P.encode(P.error("E/BAD_REQUEST", f"bad request: {exc}"))
        cmd = req["cmd"]
        if cmd == P.PING:
            return P.encode({"ok": True, "pid": os.getpid(), "protocol": P.PROTOCOL_VERSION,
                             "identity": self.ident.to_json()})
        if cmd == P.STATUS:
            return P.encode({"ok": True, "status": self.status()})
        if cmd == P.STOP:
            self.stop_event.set()
            return P.encode({"ok": True, "stopping": True, "pid": os.getpid()})
        data = await self.service.handle(cmd, req.get("selector"), req.get("args") or {},
                                         req.get("options") or {})
        return b'{"bundle":' + data + b"}\n"

    def status(self) -> dict[str, Any]:
        from .service import rss_kb

        out = {"pid": os.getpid(), "rssKb": rss_kb(os.getpid()), "identity": self.ident.to_json(),
               "socket": str(self.files.socket), "idleTimeout": self.idle_timeout,
               "uptimeS": round(time.time() - self.started, 3),
               "idleS": round(time.monotonic() - self.last_activity, 3),
               "connections": self.connections, "activeConnections": self.busy, "refused": self.refused}
        out.update(self.service.status())
        return out


def _ready(fd: int | None, message: str) -> None:
    """Tell whoever started us how the start went (one line on the inherited pipe)."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (message.replace("\n", " ") + "\n").encode())
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lanser-daemon")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--python", default=None)
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    parser.add_argument("--ready-fd", type=int, default=None)
    parser.add_argument("--detach", action="store_true", help="fork and let the parent return at once")
    parser.add_argument("--no-cache", action="store_true")
    ns = parser.parse_args(argv)
    if ns.detach and os.fork() > 0:
        os._exit(0)  # the starter reaps this parent; the daemon is re-parented, never a zombie
    if ns.detach:
        os.setsid()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s lanser-daemon[{os.getpid()}] %(levelname)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every frame at INFO
    try:
        ident = Identity(os.path.realpath(ns.workspace), ns.server, ns.python, os.environ.get("VIRTUAL_ENV") or None)
        files = files_for(ident)
        daemon = DaemonServer(ident, files, ns.idle_timeout, cache=not ns.no_cache)
    except Exception as exc:
        _ready(ns.ready_fd, f"error: {exc}")
        log.error("cannot start: %s", exc)
        return 1
    return asyncio.run(daemon.serve(ns.ready_fd))


if __name__ == "__main__":
    raise SystemExit(main())
