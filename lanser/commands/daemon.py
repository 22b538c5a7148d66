"""``lanser daemon start|stop|status``: the warm background server (see lanser/daemon/)."""

from __future__ import annotations

import os
from typing import Any

import click

from .. import output
from ..daemon import client as C
from ..daemon.paths import Identity, all_daemon_files, files_for
from ..errors import NotFound
from .runtime import Globals, global_command


def _identity(g: Globals) -> Identity:
    opts = g.options()
    ws = opts.workspace
    if not os.path.isdir(ws):
        raise NotFound(f"workspace {ws!r} is not a directory")
    return Identity.for_options(ws, opts.server, opts.python)


def _emit(g: Globals, report: dict[str, Any], lines: list[str]) -> None:
    if g.as_json:
        output.emit_json(report)
    else:
        output.emit_lines(lines)


@global_command("start")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=None, metavar="S",
              help="Exit after S seconds without a request (0: never; default 900 or "
                   "$LANSER_DAEMON_IDLE_TIMEOUT).")
@click.option("--no-cache", is_flag=True, help="No memo and no single-flight (for measurements).")
def start(g: Globals, idle_timeout: float | None, no_cache: bool) -> int:
    """Start the daemon for this workspace/server/python (no-op if it runs); waits until warm."""
    ident = _identity(g)
    files = files_for(ident)
    already = C.ping(files)
    info = already or C.start(ident, files, idle_timeout=idle_timeout, cache=not no_cache)
    report = {"running": True, "started": already is None, "pid": info.get("pid"),
              "socket": str(files.socket), "identity": ident.to_json()}
    _emit(g, report, [f"daemon {'started' if already is None else 'already running'}: pid {info.get('pid')} "
                      f"on {files.socket}"])
    return 0


@global_command("stop")
@click.option("--all", "stop_all", is_flag=True, help="Stop every daemon of this user.")
def stop(g: Globals, stop_all: bool) -> int:
    """Stop the daemon for this workspace (or every daemon with --all); fine if none runs."""
    targets = all_daemon_files() if stop_all else [files_for(_identity(g), create=False)]
    stopped = [pid for pid in (C.stop(f) for f in targets) if pid]
    _emit(g, {"stopped": stopped}, [f"stopped daemon pid {pid}" for pid in stopped] or ["no daemon running"])
    return 0


def _status_lines(st: dict[str, Any]) -> list[str]:
    srv = st.get("serverProcess") or {}
    return [f"daemon   pid {st.get('pid')}  rss {st.get('rssKb')} kB  up {st.get('uptimeS')}s  "
            f"idle {st.get('idleS')}s of {st.get('idleTimeout')}s",
            f"server   pid {srv.get('pid')}  rss {srv.get('rssKb')} kB  alive {srv.get('alive')}  "
            f"starts {st.get('serverStarts')}",
            f"workspace {st.get('workspace')}  ({st.get('server')})",
            f"requests {st.get('requests')}  memo hits {st.get('memoHits')}  coalesced {st.get('coalesced')}  "
            f"connections {st.get('connections')}  refused {st.get('refused')}",
            f"freshness watching {st.get('watching')}  full scans {st.get('fullScans')}  "
            f"disk changes {st.get('diskChanges')}",
            f"socket   {st.get('socket')}"]


@global_command("status")
@click.option("--all", "all_", is_flag=True, help="Every daemon of this user.")
def status(g: Globals, all_: bool) -> int:
    """Is the daemon running; its and its server's resident memory (VmRSS), counters.
    Exit 0 when running, 3 when not (like ``pg_ctl status``)."""
    targets = all_daemon_files() if all_ else [files_for(_identity(g), create=False)]
    found: list[dict[str, Any]] = []
    for files in targets:
        st = C.status(files)
        if st is None:
            C.cleanup_stale(files)  # a dead daemon's socket goes now
        else:
            found.append(st)
    if all_:
        _emit(g, {"daemons": found}, [line for st in found for line in _status_lines(st)] or ["no daemon running"])
        return 0 if found else 3
    if not found:
        _emit(g, {"running": False}, ["no daemon running"])
        return 3
    _emit(g, {"running": True, **found[0]}, _status_lines(found[0]))
    return 0


daemon = click.Group("daemon", help="""A warm background server per workspace, server and --python.

Commands run on it when one serves (--daemon auto, the default) or when asked to
(--daemon require); answers are byte-identical to in-process ones.  It exits after
--idle-timeout seconds without a request.

\b
Examples:
  lanser daemon start
  lanser def src/app.py:42:7      # answered by the daemon
  lanser daemon status
  lanser daemon stop
""", short_help="A warm background server per workspace.", commands=[start, stop, status])

COMMANDS = [daemon]
