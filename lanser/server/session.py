"""One live language-server session: start, negotiate, sync documents, ask, stop.

The session owns the server process.  Every request has a timeout (then
``$/cancelRequest`` is sent and E/LS_TIMEOUT raised); a server that dies is
restarted once, after a short backoff, with its open documents re-sent, and the
request retried; a second death is E/LS_CRASH.  Diagnostics are *pulled*
(``textDocument/diagnostic``) file by file, which answers only once the file
is checked: there is no waiting on pushes and no sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lsprotocol import types as T

from ..bundles.paths import to_uri
from ..errors import ContentModified, InternalError, LanserError, LsCrash, LsTimeout, RequestCancelled, UnsupportedCap
from ..options import DEFAULT_SERVER, DEFAULT_TIMEOUT
from ..workspace import CONFIG_FILES, Workspace, decode_source, settled, stat_key
from .client import FrameHook, LanserLanguageClient
from .pyenv import PythonEnv, choose_python, server_env
from .registry import ServerSpec, server_spec

RESTART_BACKOFF = 0.5

# JSON-RPC error codes the LSP specification gives meaning to.
REQUEST_CANCELLED = -32800
CONTENT_MODIFIED = -32801

ANALYSIS_SETTINGS: dict[str, Any] = {"diagnosticMode": "openFilesOnly", "autoSearchPaths": True,
                                     "useLibraryCodeForTypes": True, "logLevel": "Information"}

# root -> (stat keys of the config files, digest, settled): environment() runs per bundle.
_DIGESTS: dict[str, tuple[list[Any], str, bool]] = {}


@dataclass
class SessionConfig:
    server: str = DEFAULT_SERVER
    python: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    frame_hook: FrameHook | None = None


@dataclass
class Document:
    """A document the server has open: its version and text."""

    version: int
    text: str


@dataclass
class ServerInfo:
    name: str
    version: str
    pinned: bool
    position_encoding: str
    capabilities: dict[str, Any] = field(default_factory=dict)


def response_error(method: str, err: dict[str, Any]) -> LanserError:
    """The LanserError for a JSON-RPC error answer: the LSP's RequestCancelled and
    ContentModified have contract codes; any other is a failure of the request (exit 1)."""
    code = err.get("code")
    if code == REQUEST_CANCELLED:
        return RequestCancelled(f"{method} was cancelled by the server: {err.get('message')}")
    if code == CONTENT_MODIFIED:
        return ContentModified(f"{method}: content modified: {err.get('message')}")
    return LanserError(f"{method} failed: {err.get('message')} (code {code})")


def timeout_error(timeout: float, what: str) -> LsTimeout:
    return LsTimeout(f"timed out after {timeout:g}s waiting for {what}")


def exited_error(name: str, returncode: int | None, what: str) -> LsCrash:
    return LsCrash(f"{name} exited (code {returncode}) while waiting for {what}")


def malformed_error(name: str, client: LanserLanguageClient, what: str) -> LsCrash:
    return LsCrash(f"{name} sent a malformed message {what} "
                   f"({client.log[-1] if client.log else 'unreadable frame'})")


class Session:
    """A started server bound to one workspace; use ``async with`` or start()/stop()."""

    def __init__(self, ws: Workspace, config: SessionConfig | None = None, spec: ServerSpec | None = None) -> None:
        config = config or SessionConfig()
        self.setup(ws, config, spec or server_spec(config.server), choose_python(ws.root, config.python))

    def setup(self, ws: Workspace, config: SessionConfig, spec: ServerSpec, python: PythonEnv) -> None:
        """Every attribute of a session not yet started (a replayed session, which never looks
        a server up, is set up with the recorded server and interpreter)."""
        self.ws = ws
        self.config = config
        self.spec: ServerSpec = spec
        self.python: PythonEnv = python
        # A second analyzer's requests share a trace with the server's: their ids must differ.
        self._id_prefix = "lanser" if spec.enumerates else f"lanser-{spec.name}"
        self.client: LanserLanguageClient | None = None
        self.info: ServerInfo | None = None
        self.docs: dict[str, Document] = {}
        self._uris: dict[str, str] = {}
        self.restarts = 0
        self._next_id = 0
        self._restarting = asyncio.Lock()
        self._unresponsive = False  # a request timed out or was interrupted: stop() kills at once

    # -- configuration -------------------------------------------------------
    def settings_for(self, section: str | None) -> Any:
        """Answers ``workspace/configuration``; the project's own pyright config still wins."""
        if section == "python":
            return {"pythonPath": self.python.path} if self.python.path else {}
        if section == "python.analysis":
            return dict(ANALYSIS_SETTINGS)
        if section in ("pyright", "basedpyright", "basedpyright.analysis"):
            return {}
        return None

    def config_digest(self) -> str:
        return self.static_config_digest(self.ws)

    @staticmethod
    def static_config_digest(ws: Workspace) -> str:
        """sha256 over the client settings and the project's pyright configuration files
        (the interpreter path is left out: it is machine-specific)."""
        root = str(ws.root)
        stats: list[os.stat_result | None] = []
        for name in CONFIG_FILES:
            try:
                stats.append(os.stat(os.path.join(root, name)))
            except OSError:
                stats.append(None)
        key = [stat_key(st) if st else None for st in stats]
        hit = _DIGESTS.get(root)
        if hit is not None and hit[0] == key and hit[2]:
            return hit[1]
        read_at = time.time_ns()
        h = hashlib.sha256()
        h.update(json.dumps(ANALYSIS_SETTINGS, sort_keys=True).encode())
        for name, st in zip(CONFIG_FILES, stats):
            if st is not None and stat.S_ISREG(st.st_mode):
                h.update(name.encode() + b"\0" + (ws.root / name).read_bytes())
        digest = "sha256:" + h.hexdigest()
        _DIGESTS[root] = (key, digest, all(settled(st, read_at) for st in stats if st))
        return digest

    # -- lifecycle -----------------------------------------------------------
    async def __aenter__(self) -> "Session":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        self._unresponsive = False
        client = LanserLanguageClient(self.settings_for)
        client.raw_protocol.frame_hook = self.config.frame_hook
        try:
            await client.start_io(*self.spec.argv, env=server_env(), cwd=str(self.ws.root),
                                  start_new_session=True)
        except OSError as exc:
            raise LsCrash(f"could not start {self.spec.name}: {exc}") from None
        self.client = client
        caps = await self._initialize()
        enc = caps.get("positionEncoding") or "utf-16"
        if enc not in ("utf-16", "utf-8"):
            raise UnsupportedCap(f"server negotiated unsupported position encoding {enc!r}")
        self.info = ServerInfo(self.spec.name, self.spec.version, self.spec.matches_pin,
                               enc, caps)
        client.initialized(T.InitializedParams())
        client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={}))
        if self.spec.enumerates:
            await self._wait(client.tracked.wait(), "the server to enumerate the workspace")
        for rel, doc in sorted(self.docs.items()):  # after a restart: re-send what was open
            self._did_open(rel, doc)

    async def _initialize(self) -> dict[str, Any]:
        root = self.ws.root
        params = T.InitializeParams(
            process_id=os.getpid(),
            initialization_options=self.spec.init_options,
            root_uri=to_uri(root),
            workspace_folders=[T.WorkspaceFolder(uri=to_uri(root), name=root.name)],
            capabilities=T.ClientCapabilities(
                general=T.GeneralClientCapabilities(
                    position_encodings=[T.PositionEncodingKind.Utf16, T.PositionEncodingKind.Utf8]),
                workspace=T.WorkspaceClientCapabilities(
                    configuration=True, workspace_folders=True,
                    workspace_edit=T.WorkspaceEditClientCapabilities(
                        document_changes=True,
                        resource_operations=[T.ResourceOperationKind.Create, T.ResourceOperationKind.Rename,
                                             T.ResourceOperationKind.Delete])),
                text_document=T.TextDocumentClientCapabilities(
                    synchronization=T.TextDocumentSyncClientCapabilities(did_save=True),
                    diagnostic=T.DiagnosticClientCapabilities(dynamic_registration=True),
                    hover=T.HoverClientCapabilities(content_format=[T.MarkupKind.Markdown,
                                                                    T.MarkupKind.PlainText]),
                    document_symbol=T.DocumentSymbolClientCapabilities(
                        hierarchical_document_symbol_support=True),
                    rename=T.RenameClientCapabilities(prepare_support=True),
                    code_action=T.CodeActionClientCapabilities(
                        code_action_literal_support=T.ClientCodeActionLiteralOptions(
                            code_action_kind=T.ClientCodeActionKindOptions(
                                value_set=[T.CodeActionKind.QuickFix, T.CodeActionKind.SourceOrganizeImports,
                                           T.CodeActionKind.Source, T.CodeActionKind.RefactorRewrite]))),
                ),
            ),
        )
        result = await self._request(T.INITIALIZE, params)
        return (result or {}).get("capabilities", {})

    async def stop(self) -> None:
        """Clean ``shutdown``/``exit``; kill the process if it does not go."""
        client, self.client = self.client, None
        if client is None:
            return
        proc = client.process
        try:
            # A server that let a request time out (or was interrupted mid-request, Ctrl-C)
            # gets no shutdown handshake: waiting on a hung server would only delay the kill.
            if proc is not None and proc.returncode is None and not self._unresponsive:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._raw_request(client, T.SHUTDOWN, None), 5)
                with contextlib.suppress(Exception):
                    client.exit(None)
                with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
                    await asyncio.wait_for(proc.wait(), 5)
            elif proc is not None and proc.returncode is None:
                # Unresponsive: flush what we sent (the $/cancelRequest), close its stdin so a
                # server that still reads sees EOF and exits by itself, then kill it regardless.
                with contextlib.suppress(Exception):
                    if proc.stdin is not None:
                        await asyncio.wait_for(proc.stdin.drain(), 1)
                        proc.stdin.close()
                    await asyncio.wait_for(proc.wait(), 1)
        finally:
            kill_process(proc)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.stop(), 5)

    async def reload(self) -> None:
        """Stop and start the server again (its configuration changed): the new server reads
        the new configuration before anything is asked, open documents are re-sent.  Not a
        crash: the one automatic restart stays available."""
        await self.stop()
        await self.start()

    async def restart(self) -> None:
        old = self.client
        self.client = None
        if old is not None:
            kill_process(old.process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), 5)
        self.restarts += 1
        await asyncio.sleep(RESTART_BACKOFF * self.restarts)
        await self.start()

    @property
    def pid(self) -> int | None:
        proc = self.client.process if self.client else None
        return proc.pid if proc else None

    # -- requests --------------------------------------------------------------
    async def _wait(self, awaitable: Any, what: str) -> Any:
        client = self.client
        assert client is not None
        task = asyncio.ensure_future(awaitable)
        died = asyncio.ensure_future(client.exited.wait())
        broken = asyncio.ensure_future(client.protocol_error.wait())
        try:
            done, _ = await asyncio.wait({task, died, broken}, timeout=self.config.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # interrupted (Ctrl-C): cancel the request too
            self._unresponsive = True
            raise
        finally:
            died.cancel()
            broken.cancel()
            if not task.done():  # timed out, died or interrupted: never leave it pending
                task.cancel()
        if task in done:
            return task.result()
        await asyncio.wait({task}, timeout=1)  # let the cancelled request send $/cancelRequest
        if died in done:  # (not died.done(): a cancelled waiter is "done" too)
            raise exited_error(self.spec.name, client.returncode, what)
        if broken in done:
            self._unresponsive = True
            raise malformed_error(self.spec.name, client, f"while waiting for {what}")
        self._unresponsive = True
        raise timeout_error(self.config.timeout, what)

    async def _raw_request(self, client: LanserLanguageClient, method: str, params: Any) -> Any:
        """Send one request and wait for its answer, the timeout, or a server fault.

        No task per thing waited on: a warm ``def`` takes well under a millisecond, and
        three tasks plus ``asyncio.wait`` per request were a measurable part of it.
        """
        # String ids: pygls keeps our pending requests and the server's own requests to
        # us in one table keyed by id, and pyright numbers its requests 0, 1, 2...; an
        # integer id of ours would be dropped when the server's request of that number
        # is answered.
        if client.protocol_error.is_set():
            self._unresponsive = True
            raise malformed_error(self.spec.name, client, "earlier")
        self._next_id += 1
        msg_id = f"{self._id_prefix}-{self._next_id}"
        loop = asyncio.get_running_loop()
        client.send_failure = None
        fut = client.protocol.send_request_async(method, params, msg_id=msg_id)
        if client.send_failure is not None:
            failure, client.send_failure = client.send_failure, None
            fut.cancel()
            raise InternalError(f"internal error: could not send {method}: "
                                f"{type(failure).__name__}: {failure}")
        # The answer future itself is awaited (no waiter in between: each future between
        # the answer and this coroutine costs an event-loop turn); a timeout or a server
        # fault cancels it and says why.
        why: list[str] = []

        def give_up(reason: str) -> None:
            if not why and not fut.done():
                why.append(reason)
                fut.cancel()

        timer = loop.call_later(self.config.timeout, give_up, "timeout")
        client.fault_listeners.add(give_up)
        try:
            await fut
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not why or (task is not None and getattr(task, "cancelling", lambda: 0)()):
                # interrupted from outside (Ctrl-C): cancel the request too
                self._unresponsive = True
                self._cancel(client, fut, msg_id)
                raise
        finally:
            timer.cancel()
            client.fault_listeners.discard(give_up)
        if why:
            self._cancel(client, fut, msg_id)
            if why[0] == "died":
                raise exited_error(self.spec.name, client.returncode, method)
            self._unresponsive = True
            if why[0] == "broken":
                raise malformed_error(self.spec.name, client, f"while waiting for {method}")
            raise timeout_error(self.config.timeout, method)
        raw = client.raw_protocol.raw_results.pop(msg_id, {})
        if "error" in raw and raw["error"]:
            raise response_error(method, raw["error"])
        return raw.get("result")

    @staticmethod
    def _cancel(client: LanserLanguageClient, fut: "asyncio.Future[Any]", msg_id: str) -> None:
        """Give up on a request: drop its future and tell the server (it may be gone)."""
        fut.cancel()
        with contextlib.suppress(Exception):
            client.protocol.notify(T.CANCEL_REQUEST, T.CancelParams(id=msg_id))

    async def _request(self, method: str, params: Any) -> Any:
        client = self.client
        if client is None:
            raise LsCrash("the language server is not running")
        if client.exited.is_set():
            raise LsCrash(f"{self.spec.name} exited (code {client.returncode})")
        try:
            return await self._raw_request(client, method, params)
        except RuntimeError as exc:  # pygls fails pending futures when the process exits
            raise LsCrash(f"{self.spec.name} died during {method}: {exc}") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise LsCrash(f"{self.spec.name} connection lost during {method}: {exc}") from None

    async def request(self, method: str, params: Any) -> Any:
        """A request with one automatic restart if the server died under it.  Requests in
        flight together that see the same death share one restart."""
        generation = self.restarts
        try:
            return await self._request(method, params)
        except LsCrash:
            async with self._restarting:
                if self.restarts == generation:
                    if self.restarts >= 1:
                        raise
                    try:
                        await self.restart()
                    except LanserError as exc:
                        raise LsCrash(f"{self.spec.name} crashed and could not be restarted: "
                                      f"{exc.message}") from None
            return await self._request(method, params)

    # -- documents ------------------------------------------------------------
    def uri(self, rel: str) -> str:
        uri = self._uris.get(rel)
        if uri is None:  # quoting costs more than the rest of a warm request's sync
            uri = self._uris[rel] = to_uri(self.ws.root / rel)
        return uri

    def _did_open(self, rel: str, doc: Document) -> None:
        assert self.client is not None
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=self.uri(rel), language_id="python",
                                             version=doc.version, text=doc.text)))

    def sync(self, rel: str, text: str, *, previous: str | None = None) -> int:
        """Make the server see ``text`` for ``rel`` (open it, or send a new version).
        ``previous``: what the server saw of a file not open yet, when the disk no longer
        holds it (a step that wrote the file before telling the server)."""
        if self.client is None:
            raise LsCrash("the language server is not running")
        doc = self.docs.get(rel)
        if doc is None:
            # Opened with what the server already has (the disk text) and then changed: pyright
            # marks the files importing a document dirty on a change, not on an open, so a
            # document opened with new text would leave its importers' diagnostics stale.
            seen = previous if previous is not None else self._disk_text(rel)
            doc = self.docs[rel] = Document(1, text if seen is None else seen)
            self._did_open(rel, doc)
        if doc.text != text:
            doc.version += 1
            doc.text = text
            self.client.text_document_did_change(T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(uri=self.uri(rel), version=doc.version),
                content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)]))
        return doc.version

    def touch(self, rel: str) -> None:
        """Make the server bind ``rel`` again (a new version, the same text).

        pyright 1.1.407 answers a diagnostic pull from stale types after this sequence: a
        file it did not check since the last change elsewhere is asked a hover, then a file
        it imports changes, then it is pulled (it reported a str where the import now gave
        an int).  A new version of the file itself clears that; the reward runner touches
        every file it asked about before a step."""
        doc = self.docs.get(rel)
        if doc is None:
            text = self._disk_text(rel)
            if text is None:
                return
            self.sync(rel, text)
            doc = self.docs[rel]
        if self.client is None:
            raise LsCrash("the language server is not running")
        doc.version += 1
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=self.uri(rel), version=doc.version),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=doc.text)]))

    def _disk_text(self, rel: str) -> str | None:
        """The text of ``rel`` on disk (None: absent or not decodable)."""
        try:
            return decode_source((self.ws.root / rel).read_bytes(), rel).text
        except (OSError, LanserError):
            return None

    def close(self, rel: str) -> None:
        """Stop overriding ``rel``: the server goes back to the file on disk."""
        if self.docs.pop(rel, None) is not None and self.client is not None:
            self.client.text_document_did_close(T.DidCloseTextDocumentParams(
                text_document=T.TextDocumentIdentifier(uri=self.uri(rel))))

    def notify_disk_changes(self, changes: dict[str, str]) -> None:
        """Tell the server about files changed on disk: rel -> created|changed|deleted."""
        if not changes or self.client is None:
            return
        kinds = {"created": T.FileChangeType.Created, "changed": T.FileChangeType.Changed,
                 "deleted": T.FileChangeType.Deleted}
        self.client.workspace_did_change_watched_files(T.DidChangeWatchedFilesParams(
            changes=[T.FileEvent(uri=self.uri(rel), type=kinds[kind]) for rel, kind in sorted(changes.items())]))

    # -- diagnostics ----------------------------------------------------------
    async def pull_diagnostics(self, rel: str) -> list[dict[str, Any]] | None:
        """The server's diagnostics for one file; None when the server does not check it."""
        result = await self.request(T.TEXT_DOCUMENT_DIAGNOSTIC, T.DocumentDiagnosticParams(
            text_document=T.TextDocumentIdentifier(uri=self.uri(rel))))
        if not result or result.get("kind") != "full":
            return None
        return list(result.get("items") or [])


def kill_process(proc: Any) -> None:
    """Make sure a server process (and anything it spawned) is gone."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 9) if _own_group(proc.pid) else proc.kill()


def _own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


Callback = Callable[..., Any]
