"""``lanser mcp [--http HOST:PORT]``: the MCP server for coding agents (lanser/mcp_server/).

Parses the options and hands them to :func:`lanser.mcp_server.server.serve`;
the ``mcp`` SDK (the optional extra ``lanser[mcp]``) is imported only then, so
``lanser --help`` works without it.
"""

from __future__ import annotations

import os

import click

from ..errors import NotFound, UnsupportedCap
from .runtime import Globals, global_command

DEFAULT_HOST = "127.0.0.1"


def parse_http(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to
    127.0.0.1 and port 0 picks a free port (the server prints its URL on stderr)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT", param_hint="--http") from None
    if not 0 <= number <= 65535:
        raise click.BadParameter(f"{value!r}: port out of range", param_hint="--http")
    return host or DEFAULT_HOST, number


@global_command("mcp", writes=True, short_help="Serve Lanser's tools to coding agents over MCP.")
@click.option("--http", "http", default=None, metavar="HOST:PORT",
              help="Serve streamable HTTP at http://HOST:PORT/mcp, for several agents sharing one server "
                   "(HOST defaults to 127.0.0.1; port 0 picks a free port). Default: stdio.")
def mcp_cmd(g: Globals, http: str | None) -> int:
    """Serve Lanser over the Model Context Protocol: stdio by default (the agent launches
    `lanser mcp -w REPO`), or streamable HTTP with --http for many agents sharing one
    instance.  Every tool works on the workspace given with -w and applies the safety
    options given here (--allow-dirty, --allow, --deny, --deny-apply-on-ambiguous) to every
    edit.  Navigation and edits go through the workspace's warm daemon (started if none
    runs; --daemon never keeps one server in this process instead), so agents share one
    language server and see each other's applied edits.

    \b
    Tools: locate, definition, references, hover, symbols, diagnostics, prepare_rename,
    rename, code_actions, edit_symbol, reward_step, reward_session_summary, replay.

    \b
    Examples:
      lanser mcp -w path/to/repo
      lanser mcp -w path/to/repo --http 127.0.0.1:8765 --allow 'src/**'
    """
    if g.get("trace_file"):
        raise click.UsageError("the MCP server does not record traces; record with the CLI's --trace-file "
                               "and replay them with the `replay` tool")
    address = parse_http(http) if http is not None else None
    workspace = os.path.realpath(g.get("workspace", "."))
    if not os.path.isdir(workspace):
        raise NotFound(f"workspace {g.get('workspace', '.')!r} is not a directory")
    try:
        from ..mcp_server.server import serve
    except ImportError as exc:
        raise UnsupportedCap(f"the MCP server needs the optional extra: pip install 'lanser[mcp]' ({exc})") from None
    from ..daemon.client import daemon_mode
    from ..mcp_server.settings import McpSettings

    settings = McpSettings(
        workspace=workspace, server=g.get("server", "pyright"), python=g.get("python"),
        index_io=g.get("index_io", "codepoint"), timeout=g.get("timeout", 30.0),
        allow_dirty=bool(g.get("allow_dirty", False)),
        deny_apply_on_ambiguous=bool(g.get("deny_apply_on_ambiguous", False)),
        allow=tuple(g.get("allow", ())), deny=tuple(g.get("deny", ())),
        daemon=daemon_mode(g.get("daemon")) != "never")
    return serve(settings, address)


COMMANDS = [mcp_cmd]
