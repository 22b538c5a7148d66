"""``lanser mcp``: Lanser's tools for coding agents over the Model Context Protocol.

Built on the ``mcp`` Python SDK v2 (``MCPServer``; the optional extra
``lanser[mcp]``).  Modules, in the order data flows:

* :mod:`.settings` -- the workspace and safety envelope the server was started with;
* :mod:`.backend` -- navigation and mutations through the shared daemon (the SDK);
* :mod:`.rewards` -- ``reward_step`` trajectories on Lanser's reward runners;
* :mod:`.schemas` -- the published output schemas (the shipped ones, self-contained);
* :mod:`.tools` -- the tools, their descriptions, annotations and results;
* :mod:`.server` -- stdio and streamable HTTP, start-up and shut-down.

(The package is not called ``mcp``: it must never shadow the SDK.)
"""

from __future__ import annotations

from .settings import McpSettings

__all__ = ["McpSettings"]
