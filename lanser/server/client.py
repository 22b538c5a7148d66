"""The pygls ``LanguageClient`` subclass that speaks to the pinned server.

Two things differ from a stock client:

* Responses are kept as the raw JSON the server sent (``raw_results``).  Facts
  are normalized from that JSON, so a trace of the frames replays into the
  very same bundle without lsprotocol/cattrs in between (and pull-diagnostic
  answers, which cattrs cannot disambiguate, still arrive).
* Server faults are turned into state the session can act on: the process
  exiting sets ``exited``, so the session restarts it or raises E/LS_CRASH.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from collections import deque
from typing import Any, Callable

from lsprotocol import types as T
from pygls.exceptions import JsonRpcInternalError
from pygls.lsp.client import LanguageClient
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCProtocol, JsonRPCResponseMessage

FrameHook = Callable[[str, dict[str, Any]], None]

# pygls logs a malformed frame with its traceback; with no logging configured, Python's
# last-resort handler would print that traceback on the user's stderr.  Lanser reports
# such faults itself (E/LS_CRASH), so pygls' records go nowhere unless an app configures
# logging.
logging.getLogger("pygls").addHandler(logging.NullHandler())

# What pyright logs once it has listed the workspace's files (its source enumerator's end).
# Not "No include entries specified": that is logged while the configuration is read, before
# the listing, and a pull answered before the listing ends sees a partial program (django:
# the first files came back empty or with fewer diagnostics).
_TRACKED_RE = re.compile(r"^(Found \d+ source files?|No source files found)")
LOG_LINES = 1000  # the server's log lines a client keeps (the latest)


class RawResultProtocol(LanguageServerProtocol):
    """Keeps each response's raw ``result``/``error`` and reports every frame to a hook.

    pygls decodes a frame with ``json.loads(body, object_hook=structure_message)``, so
    ``structure_message`` sees every nested JSON object of a message, innermost first, and
    the message itself last.  The frame hook therefore hears a received message in
    :meth:`handle_message` (called once per frame, right after decoding), as the last
    object decoded: one frame per JSON-RPC message.  A message pygls cannot structure is
    reported from ``structure_message`` when that fails (it has ``jsonrpc``; a nested
    object does not), since ``handle_message`` is then never called.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_results: dict[Any, dict[str, Any]] = {}
        self.frame_hook: FrameHook | None = None
        self._decoded: dict[str, Any] | None = None  # the last object decoded: the message, at the end

    def structure_message(self, data: dict[str, Any]) -> Any:
        self._decoded = data
        if "id" in data and "method" not in data and "jsonrpc" in data:
            self._result_types.pop(data["id"], None)
            self.raw_results[data["id"]] = {k: data[k] for k in ("result", "error") if k in data}
            return JsonRPCResponseMessage(id=data["id"], jsonrpc=data["jsonrpc"], result=None)
        try:
            return super().structure_message(data)
        except Exception:
            self._report_received()
            raise

    def _report_received(self) -> None:
        data, self._decoded = self._decoded, None
        if self.frame_hook is not None and data is not None:
            self.frame_hook("recv", data)

    def handle_message(self, message: Any) -> None:
        self._report_received()
        # Responses (what a warm session mostly receives) skip pygls' dispatch, whose
        # runtime ``Protocol`` isinstance checks cost more than the rest of handling one.
        if (type(message) is JsonRPCResponseMessage and message.jsonrpc == JsonRPCProtocol.VERSION
                and not self._shutdown):
            contextvars.copy_context().run(self._handle_response, message.id, message.result)
            return
        super().handle_message(message)

    def _send_data(self, data: Any) -> None:
        if self.frame_hook is not None and data:
            self.frame_hook("send", json.loads(json.dumps(data, default=self._serialize_message)))
        super()._send_data(data)


class LanserLanguageClient(LanguageClient):
    """A client whose server-initiated traffic is answered by Lanser's own policy."""

    def __init__(self, settings: Callable[[str | None], Any]) -> None:
        super().__init__("lanser", "0", protocol_cls=RawResultProtocol)
        self.settings_for = settings
        self.exited = asyncio.Event()
        self.tracked = asyncio.Event()      # the server has enumerated the workspace's files
        self.protocol_error = asyncio.Event()  # the server sent a frame that could not be handled
        # Called with "died" or "broken" on a server fault: the session's pending requests
        # settle at once instead of each keeping a task to wait on the events.
        self.fault_listeners: set[Callable[[str], None]] = set()
        self.send_failure: Exception | None = None  # the last message pygls could not serialize
        # The server's log lines, the latest LOG_LINES only: a warm server logs for as long as it
        # lives (pyright's "Long operation" lines on every slow check), and a reward service's
        # servers live for days.
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.returncode: int | None = None
        self._register_handlers()

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The server process (pygls keeps it as ``_server``)."""
        return self._server

    @property
    def raw_protocol(self) -> RawResultProtocol:
        return self.protocol  # type: ignore[return-value]

    def _register_handlers(self) -> None:
        @self.feature(T.WORKSPACE_CONFIGURATION)
        def _configuration(ls: Any, params: T.ConfigurationParams) -> list[Any]:
            return [self.settings_for(item.section) for item in params.items]

        @self.feature(T.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _progress_create(ls: Any, params: Any) -> None:
            return None

        @self.feature(T.CLIENT_REGISTER_CAPABILITY)
        def _register(ls: Any, params: Any) -> None:
            return None

        @self.feature(T.WORKSPACE_DIAGNOSTIC_REFRESH)
        def _refresh(ls: Any, params: Any = None) -> None:
            return None  # Lanser pulls on demand; nothing to refresh.

        @self.feature(T.CLIENT_UNREGISTER_CAPABILITY)
        def _unregister(ls: Any, params: Any) -> None:
            return None

        @self.feature(T.WORKSPACE_APPLY_EDIT)
        def _apply_edit(ls: Any, params: Any) -> T.ApplyWorkspaceEditResult:
            # Lanser applies edits itself, through its safety envelope; never on the server's say.
            return T.ApplyWorkspaceEditResult(applied=False, failure_reason="lanser applies edits itself")

        @self.feature(T.WINDOW_LOG_MESSAGE)
        def _log(ls: Any, params: T.LogMessageParams) -> None:
            self.log.append(params.message)
            if _TRACKED_RE.match(params.message):
                self.tracked.set()

        @self.feature(T.WINDOW_SHOW_MESSAGE)
        def _show(ls: Any, params: T.ShowMessageParams) -> None:
            self.log.append(params.message)

        @self.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(ls: Any, params: Any) -> None:
            return None  # Lanser pulls diagnostics; pushed ones are ignored.

        @self.feature("$/progress")
        def _progress(ls: Any, params: Any) -> None:
            return None

        @self.feature("pyright/beginProgress")
        def _begin(ls: Any, params: Any = None) -> None:
            return None

        @self.feature("pyright/reportProgress")
        def _report(ls: Any, params: Any = None) -> None:
            return None

        @self.feature("pyright/endProgress")
        def _end(ls: Any, params: Any = None) -> None:
            return None

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self.returncode = server.returncode
        self.exited.set()
        self._notify_fault("died")

    def report_server_error(self, error: Exception, source: Any) -> None:
        if source is JsonRpcInternalError:
            # pygls could not serialize something *we* sent: Lanser's fault, not the
            # server's.  The session raises it to the caller at once (no wait, no crash).
            self.send_failure = error
            return
        # Malformed frames from the server: remembered, surfaced as E/LS_CRASH by the session.
        self.log.append(f"server error: {type(error).__name__}: {error}")
        self.protocol_error.set()
        self._notify_fault("broken")

    def _notify_fault(self, what: str) -> None:
        for listener in list(self.fault_listeners):
            listener(what)
