"""The daemon's wire format: one JSON object per line, each way.

Request:  ``{"cmd": "def", "selector": "...", "args": {...}, "options": {...}}``
Response: ``{"bundle": {...}}`` -- the very bundle an in-process run gives.

Control requests use ``cmd`` names starting with ``$`` (``$ping``,
``$status``, ``$stop``) and answer ``{"ok": true, ...}``.  A request the daemon
cannot take at all (bad JSON, another user) answers ``{"error": {"code",
"message"}}``.  A connection may carry several requests, answered in order.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 64 * 1024 * 1024   # an ``edit --text`` may carry a whole file
PROTOCOL_VERSION = 1

PING, STATUS, STOP = "$ping", "$status", "$stop"

# Commands whose bundles depend only on the workspace's files and the request:
# safe to memoize and to re-run in-process if the daemon dies mid-request.
READ_ONLY = frozenset({"locate", "def", "refs", "hover", "symbols", "diag", "prepare-rename"})


def writes(cmd: str, args: dict[str, Any]) -> bool:
    """True for a request that may write files (an applying rename, edit or action): it is
    never memoized, drops every memoized answer, and is not re-run if the daemon dies."""
    if cmd in ("rename", "edit"):
        return bool(args.get("apply"))
    if cmd == "actions":
        return args.get("apply") is not None
    return cmd not in READ_ONLY


# Options that pick the daemon (the rest travel with each request).
IDENTITY_OPTIONS = ("workspace", "server", "python")


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes) -> Any:
    return json.loads(line.decode("utf-8"))


def request(cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"cmd": cmd, "selector": selector, "args": dict(args or {}), "options": dict(options or {})}


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
