"""Talking to a daemon from a short-lived process: connect, ask, start, stop.

This module is on the CLI's hot path, so it imports only the standard
library's light modules (no asyncio, no pygls, no lsprotocol, no tree-sitter);
``subprocess`` and ``select`` are imported only when a daemon must be started.

Modes (``--daemon``, default from ``$LANSER_DAEMON``, else ``auto``):

* ``auto``: use a running daemon for this (workspace, server, python); if
  there is none, run in-process and start nothing.  If the daemon dies
  mid-request a command that writes nothing (a read or a dry run) is re-run
  in-process; an applying one is E/LS_CRASH (the edit may or may not have
  landed: look before retrying).
* ``never``: always in-process.
* ``require``: use the daemon, starting one if absent; failure is E/LS_CRASH.
* ``start`` (``$LANSER_DAEMON`` only): like ``auto``, but start a daemon when
  none is running; any failure falls back in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from typing import Any

from ..bundles.envelope import error_bundle
from ..errors import BY_CODE, FsPermissions, LanserError, LsCrash
from . import protocol as P
from .paths import DaemonFiles, Identity, files_for

MODE_ENV = "LANSER_DAEMON"
IDLE_ENV = "LANSER_DAEMON_IDLE_TIMEOUT"
MODES = ("auto", "never", "require", "start")
DEFAULT_IDLE_TIMEOUT = 900.0
START_TIMEOUT = 120.0


def daemon_mode(flag: str | None) -> str:
    """The effective mode: the flag, else $LANSER_DAEMON, else auto (unknown values: auto)."""
    mode = (flag or os.environ.get(MODE_ENV) or "auto").strip().lower()
    return mode if mode in MODES else "auto"


def default_idle_timeout() -> float:
    try:
        return float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_TIMEOUT))
    except ValueError:
        return DEFAULT_IDLE_TIMEOUT


# -- liveness -----------------------------------------------------------------------

def daemon_alive(files: DaemonFiles) -> bool:
    """True while a daemon holds its lifetime lock (a socket without it is stale)."""
    try:
        fd = os.open(files.lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def cleanup_stale(files: DaemonFiles) -> bool:
    """Remove the socket and meta file a dead daemon left behind; True if it did."""
    if daemon_alive(files):
        return False
    removed = False
    for path in (files.socket, files.meta):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed = True
    return removed


def read_meta(files: DaemonFiles) -> dict[str, Any] | None:
    try:
        with open(files.meta, encoding="utf-8") as fh:
            meta = json.load(fh)
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


# -- one connection ------------------------------------------------------------------

class Connection:
    """A blocking JSON-lines connection to a daemon (several requests, in order)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""

    def call(self, req: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request; its response, or None if the daemon went away before answering."""
        try:
            self.sock.sendall(P.encode(req))
            while b"\n" not in self._buf:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return None
                self._buf += chunk
        except OSError:
            return None
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            resp = P.decode(line)
        except ValueError:
            return None
        return resp if isinstance(resp, dict) else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def connect(files: DaemonFiles, timeout: float = 5.0) -> Connection | None:
    """Connect to the daemon's socket; None (after removing a stale socket) if none answers."""
    if not os.path.exists(files.socket):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(files.socket))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        cleanup_stale(files)
        return None
    except OSError:
        sock.close()
        return None
    try:
        import struct

        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        peer = struct.unpack("3i", creds)[1]
    except OSError:
        peer = -1
    if peer != os.getuid():  # never take answers from another user's process
        sock.close()
        raise FsPermissions(f"the daemon socket {files.socket} is served by uid {peer}, not by us")
    sock.settimeout(None)  # the daemon bounds every server request by --timeout itself
    return Connection(sock)


def call(files: DaemonFiles, req: dict[str, Any]) -> dict[str, Any] | None:
    conn = connect(files)
    if conn is None:
        return None
    try:
        return conn.call(req)
    finally:
        conn.close()


def ping(files: DaemonFiles) -> dict[str, Any] | None:
    resp = call(files, P.request(P.PING))
    return resp if resp and resp.get("ok") else None


def status(files: DaemonFiles) -> dict[str, Any] | None:
    resp = call(files, P.request(P.STATUS))
    return resp.get("status") if resp and resp.get("ok") else None


# -- start and stop ------------------------------------------------------------------

def start(ident: Identity, files: DaemonFiles | None = None, *, idle_timeout: float | None = None,
          wait: float = START_TIMEOUT, cache: bool = True) -> dict[str, Any]:
    """Start the daemon for ``ident`` unless one runs; returns its ping answer.

    The start is serialized with a lock file, so concurrent starters share one
    daemon.  The new process reports on an inherited pipe once its socket
    listens and its server is warm: nobody polls or sleeps.
    """
    import select
    import subprocess

    files = files or files_for(ident)
    idle = default_idle_timeout() if idle_timeout is None else idle_timeout
    with open(os.open(files.start_lock, os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = ping(files)
        if found is not None:
            return found
        cleanup_stale(files)
        r, w = os.pipe()
        argv = [sys.executable, "-m", "lanser.daemon.server", "--detach", "--workspace", ident.workspace,
                "--server", ident.server, "--idle-timeout", repr(float(idle)), "--ready-fd", str(w)]
        if ident.python:
            argv += ["--python", ident.python]
        if not cache:
            argv.append("--no-cache")
        env = dict(os.environ)
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
        try:
            logfd = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            os.close(r)
            os.close(w)
            raise LsCrash(f"could not start the daemon: cannot open {files.log}: {exc.strerror}") from None
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfd, stderr=logfd,
                                    pass_fds=(w,), start_new_session=True, cwd=str(files.dir), env=env)
        except OSError as exc:
            os.close(r)
            raise LsCrash(f"could not start the daemon: {exc}") from None
        finally:
            os.close(w)
            os.close(logfd)
        message = b""
        deadline = time.monotonic() + wait
        try:
            while not message.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    raise LsCrash(f"the daemon did not become ready within {wait:g}s; see {files.log}")
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                message += chunk
        finally:
            os.close(r)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)  # the --detach parent: exits at once
        text = message.decode(errors="replace").strip()
        if text not in ("ok", "busy"):
            raise LsCrash(f"the daemon failed to start: {text or 'it exited'}; see {files.log}")
        found = ping(files)
        if found is None:
            raise LsCrash(f"the daemon started but does not answer; see {files.log}")
        return found


def stop(files: DaemonFiles, wait: float = 20.0) -> int | None:
    """Stop the daemon (``$stop``, then SIGTERM, then SIGKILL); returns its pid if one ran."""
    meta = read_meta(files)
    resp = call(files, P.request(P.STOP))
    pid = (resp or {}).get("pid") or (meta or {}).get("pid")
    if resp is None and not daemon_alive(files):
        cleanup_stale(files)
        return None
    deadline = time.monotonic() + wait
    signals = [15, 9]
    while daemon_alive(files):
        if time.monotonic() > deadline:
            if not signals or not pid:
                raise LsCrash(f"daemon {pid} does not stop")
            with contextlib.suppress(OSError):
                os.kill(int(pid), signals.pop(0))
            deadline = time.monotonic() + 5
        time.sleep(0.02)
    cleanup_stale(files)
    if pid:  # the lock goes first; the process follows within moments
        deadline = time.monotonic() + 5
        while process_alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
    return int(pid) if pid else None


def process_alive(pid: int) -> bool:
    """A live process (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


# -- the CLI's transparent path ---------------------------------------------------------

def _target(mode: str, options: dict[str, Any]) -> tuple[Identity, DaemonFiles] | None:
    """The daemon these options pick, or None to run in-process (raises only in require mode)."""
    if mode == "never":
        return None
    workspace = options.get("workspace") or "."
    if not os.path.isdir(workspace):
        return None  # in-process reports the bad workspace with its proper bundle
    ident = Identity.for_options(workspace, options.get("server"), options.get("python"))
    try:
        return ident, files_for(ident, create=mode in ("require", "start"))
    except LanserError:
        if mode == "require":
            raise
        return None


def _connect_or_start(mode: str, ident: Identity, files: DaemonFiles,
                      idle_timeout: float | None = None) -> Connection | None:
    """A connection to the daemon; ``require``/``start`` start one if none runs.  None: run
    in-process (``auto`` without a daemon, ``start`` that could not start one)."""
    conn = connect(files)
    if conn is not None or mode == "auto":
        return conn
    try:
        start(ident, files, idle_timeout=idle_timeout)
    except LanserError:
        if mode == "start":
            return None
        raise
    conn = connect(files)
    if conn is None and mode != "start":
        raise LsCrash("the daemon does not accept connections")
    return conn


def daemon_serves(flag: str | None, options: dict[str, Any]) -> bool:
    """Whether a daemon will answer requests with these options (started now in ``require``
    and ``start`` modes); ``batch`` asks once, before its first step."""
    mode = daemon_mode(flag)
    target = _target(mode, options)
    if target is None:
        return False
    conn = _connect_or_start(mode, *target)
    if conn is None:
        return False
    conn.close()
    return True


def answer(resp: dict[str, Any]) -> dict[str, Any]:
    """The bundle of a daemon's response.  A request the daemon refused raises its error: the
    contract's class for a contract code (``errors.BY_CODE``), else E/LS_CRASH."""
    if isinstance(resp.get("bundle"), dict):
        return resp["bundle"]
    err = resp.get("error") or {}
    cls = BY_CODE.get(str(err.get("code")))
    if cls is None:
        raise LsCrash(f"the daemon refused the request: {err.get('code')}: {err.get('message')}")
    raise cls(str(err.get("message")))


class DaemonLink:
    """The one request loop to a daemon: the CLI's transparent path, ``batch``'s steps and the
    SDK's daemon clients all send their requests through it.

    ``mode`` is ``--daemon``'s (``auto``, ``require``, ``start``); ``keep`` holds the
    connection between requests (the SDK).  A daemon that goes away before answering a
    request that writes nothing is asked again once on a fresh connection in ``require``
    mode (started anew if need be), and otherwise left for an in-process run (None); one
    that goes away during an applying request is E/LS_CRASH (the edit may have landed).
    """

    def __init__(self, ident: Identity, files: DaemonFiles, mode: str, *, keep: bool = False,
                 idle_timeout: float | None = None) -> None:
        self.ident = ident
        self.files = files
        self.mode = mode
        self.keep = keep
        self.idle_timeout = idle_timeout
        self.conn: Connection | None = None

    def bundle(self, cmd: str, selector: str | None, args: dict[str, Any],
               options: dict[str, Any]) -> dict[str, Any] | None:
        """The daemon's bundle for one request, or None to run it in-process instead."""
        opts = {k: v for k, v in options.items() if k not in P.IDENTITY_OPTIONS}
        opts["workspace"] = self.ident.workspace
        req = P.request(cmd, selector, args, opts)
        writes = P.writes(cmd, args)
        for attempt in range(2):
            if self.conn is None:
                self.conn = _connect_or_start(self.mode, self.ident, self.files, self.idle_timeout)
            if self.conn is None:
                return None
            resp = None
            try:
                with _interrupts_held(writes):
                    resp = self.conn.call(req)
            finally:
                if resp is None or not self.keep:
                    self.close()
            if resp is not None:
                return answer(resp)
            if writes:
                raise LsCrash(f"the daemon died during {cmd}; the edit may or may not have been applied")
            if self.mode != "require":
                return None  # the daemon died mid-request: nothing was written, answer in-process
            if attempt:
                raise LsCrash(f"the daemon died during {cmd}")
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


def bundle_via_daemon(flag: str | None, options: dict[str, Any], cmd: str, selector: str | None,
                      args: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's bundle for one CLI request, or None to run in-process instead."""
    mode = daemon_mode(flag)
    target = _target(mode, options)
    if target is None:
        return None
    return DaemonLink(*target, mode).bundle(cmd, selector, args, options)


@contextlib.contextmanager
def _interrupts_held(hold: bool) -> Any:
    """While an applying request is with the daemon, Ctrl-C does not abandon it: the daemon
    applies (or refuses) regardless, and only its answer says which, so the client waits
    for that answer and prints it.  Reads and dry runs stay interruptible."""
    import signal
    import threading

    if not hold or threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if seen:
            from ..output import note

            note("interrupted while the daemon was applying the edit: waited for its report")


class DaemonSteps:
    """Runs one step at a time on the daemon, like an Engine's ``run`` (for ``batch``).

    A step the daemon cannot answer (it died mid-read, and ``auto`` finds no
    other) runs on ``fallback``, an in-process engine that starts its server
    only then; a daemon that dies during an applying step gives that step
    E/LS_CRASH, as a single command would.
    """

    def __init__(self, flag: str | None, options: dict[str, Any], fallback: Any) -> None:
        self.flag = flag
        self.options = options
        self.fallback = fallback

    async def run(self, cmd: str, selector: str | None = None,
                  args: dict[str, Any] | None = None) -> dict[str, Any]:
        args = dict(args or {})
        try:
            bundle = bundle_via_daemon(self.flag, self.options, cmd, selector, args)
        except LanserError as exc:
            return error_bundle(cmd, selector, args, exc)
        if bundle is None:
            result: dict[str, Any] = await self.fallback.run(cmd, selector, args)
            return result
        return bundle

    async def close(self) -> None:
        await self.fallback.close()
