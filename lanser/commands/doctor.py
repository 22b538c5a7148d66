"""``lanser doctor``: is the pinned server here, and does it start and negotiate?"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from .. import output
from ..errors import LanserError
from ..server.registry import node_heap_mb, server_spec
from ..server.session import Session, SessionConfig
from ..version import __version__
from ..workspace import Workspace
from .runtime import Globals, global_command, run_async


def _node_version(node: str) -> str:
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"


def diagnose(g: Globals) -> tuple[dict[str, Any], int]:
    report: dict[str, Any] = {"lanserVersion": __version__,
                              "lanserPython": ".".join(map(str, sys.version_info[:3]))}
    code = 0
    try:
        opts = g.options()
        spec = server_spec(opts.server)
        report["server"] = {"name": spec.name, "version": spec.version, "pinned": spec.pinned,
                            "matchesPin": spec.matches_pin, "path": spec.langserver}
        report["node"] = {"path": spec.node, "version": _node_version(spec.node), "heapMb": node_heap_mb()}
        ws = Workspace(opts.workspace)
        session = Session(ws, SessionConfig(server=spec.name, python=opts.python, timeout=opts.timeout))
        report["python"] = {"path": session.python.path, "source": session.python.source,
                            "version": session.python.full_version}

        async def start() -> str:
            try:
                await session.start()
                return session.info.position_encoding if session.info else "unknown"
            finally:
                await session.stop()

        report["positionEncoding"] = run_async(start)
        report["ok"] = spec.matches_pin
        code = 0 if spec.matches_pin else 1
    except LanserError as exc:
        report["ok"] = False
        report["error"] = exc.to_json()
        code = exc.exit_code
    return report, code


@global_command("doctor")
def doctor(g: Globals) -> int:
    """Server path and version against the pin, Node.js and Python versions, negotiated encoding."""
    report, code = diagnose(g)
    if g.as_json:
        output.emit_json(report)
    else:
        srv = report.get("server", {})
        py = report.get("python", {})
        output.emit_lines([
            f"server   {srv.get('name')} {srv.get('version')} (pinned {srv.get('pinned')}: "
            f"{'ok' if srv.get('matchesPin') else 'MISMATCH'})  {srv.get('path')}",
            f"node     {report.get('node', {}).get('version')}  {report.get('node', {}).get('path')}"
            f"  (heap limit {report.get('node', {}).get('heapMb')} MB)",
            f"python   {py.get('version')} via {py.get('source')}  {py.get('path') or '(server discovery)'}",
            f"encoding {report.get('positionEncoding')}"])
        if "error" in report:
            output.emit_err_lines([f"error    {report['error']['code']}: {report['error']['message']}"])
    return code


COMMANDS = [doctor]
