"""What ``lanser mcp`` was started with: one workspace and the safety envelope for every tool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Options


@dataclass(frozen=True)
class McpSettings:
    """The server's workspace, its global options and its safety options.  Every tool call
    runs with these; no tool argument can change the workspace or loosen the envelope."""

    workspace: str
    server: str = "pyright"
    python: str | None = None
    index_io: str = "codepoint"
    timeout: float = 30.0
    allow_dirty: bool = False
    deny_apply_on_ambiguous: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    daemon: bool = True              # False: one in-process service instead of the shared daemon
    idle_timeout: float | None = None  # for a daemon this server starts (None: the daemon's default)

    def request_options(self) -> dict[str, Any]:
        """The per-request options every navigation and mutation call carries (as the CLI's)."""
        return {"index_io": self.index_io, "timeout": self.timeout, "allow_dirty": self.allow_dirty,
                "deny_apply_on_ambiguous": self.deny_apply_on_ambiguous, "allow": tuple(self.allow),
                "deny": tuple(self.deny)}

    def engine_options(self) -> Options:
        """Options for an in-process Engine (the reward runners)."""
        from ..engine import Options

        return Options(workspace=self.workspace, server=self.server, python=self.python,
                       **self.request_options())
