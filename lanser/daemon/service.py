"""The warm core shared by the daemon and the in-process SDK.

A :class:`Service` owns one server session for one (workspace, server,
python) and answers requests through an :class:`~lanser.engine.Engine` built
per request (so per-request options such as ``--index-io`` or ``--cursor``
differ freely) that borrows the shared session only when its handler asks for
the server -- exactly when an in-process run would start one, so the bundles
are byte-identical to in-process ones.

Before every answer the service looks at the disk (:class:`Scanner`): changed
files that the server has open are re-sent (or closed when deleted), every
change is announced with ``workspace/didChangeWatchedFiles``, and a change of
the pyright configuration rebuilds the session.  A dead server is replaced
before the request, and a request that writes nothing (a read or a dry run)
and still meets E/LS_CRASH is retried once on a fresh session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import weakref
from typing import Any

import orjson

from ..engine import Engine, error_bundle
from ..errors import FsPermissions, InternalError, LanserError
from ..options import DEFAULT_SERVER, DEFAULT_TIMEOUT, OPTION_NAMES, Options
from ..selectors import parse_selector
from ..selectors.grammar import looks_like_selector
from ..server.pyenv import PythonEnv, choose_python
from ..server.session import Session, SessionConfig, kill_process
from ..workspace import Workspace
from .cache import CONFIG_FILES, Memo, Scanner, SingleFlight, diff_states, request_key, state_digest
from .protocol import IDENTITY_OPTIONS, READ_ONLY, writes

log = logging.getLogger("lanser.daemon")

# Error codes whose bundles depend only on the request and the files (safe to memoize).
# (Not E/VERSION_SKEW: whether a ``?v=`` selector's old text is found depends on the
# snapshot and git object stores, which the workspace digest does not cover.)
_DETERMINISTIC_CODES = frozenset({0, 2, 3, 4, 71, 72, 75})


def dump_bundle(bundle: dict[str, Any]) -> bytes:
    """The bundle as compact JSON in its own key order (the memo's and the wire's form)."""
    return orjson.dumps(bundle)


class _SharedEngine(Engine):
    """An Engine that borrows the service's session instead of starting its own."""

    def __init__(self, options: Options, service: "Service") -> None:
        super().__init__(options)
        self.ws = service.ws  # one Workspace object: the selector caches are keyed by it
        self._service = service
        self.release()

    def release(self) -> None:
        """Forget the borrowed session: the next run borrows it afresh, as a new in-process
        engine would start one (no session until its handler asks for one)."""
        self.session = None
        self._python = self._service.python_env()

    async def server(self) -> Session:
        if self.session is None:
            self.session = await self._service.session_for(self.options.timeout)
            self._python = self.session.python
        return self.session

    async def close(self) -> None:
        self.session = None  # the service owns the session


class Service:
    """One workspace, one warm server, fresh and memoized answers."""

    def __init__(self, workspace: str, server: str = DEFAULT_SERVER, python: str | None = None, *,
                 cache: bool = True) -> None:
        self.ws = Workspace(workspace)
        self.server_name = server
        self.python_opt = python
        self.cache = cache
        self.session: Session | None = None
        self._python: PythonEnv | None = None
        self.lock = asyncio.Lock()
        self.scanner = Scanner(self.ws)
        self.synced: dict[str, str] | None = None   # the disk state the session was last told about
        self.memo = Memo()
        self.flights = SingleFlight()
        self.digest = ""
        self._engines: dict[Options, _SharedEngine] = {}
        self.requests = 0
        self.session_starts = 0
        self.dropped_restarts = 0   # in-session restarts of sessions since dropped
        self.disk_changes = 0

    # -- session ------------------------------------------------------------------
    def python_env(self) -> PythonEnv:
        if self._python is None:
            self._python = choose_python(self.ws.root, self.python_opt)
        return self._python

    def session_alive(self) -> bool:
        s = self.session
        return s is not None and s.client is not None and not s.client.exited.is_set()

    async def session_for(self, timeout: float = DEFAULT_TIMEOUT) -> Session:
        """The warm session, started (or replaced, if its server died) on demand."""
        if self.session is not None and not self.session_alive():
            log.warning("server process is gone; starting a new one")
            await self.drop_session()
        if self.session is None:
            session = Session(self.ws, SessionConfig(server=self.server_name, python=self.python_opt,
                                                     timeout=timeout))
            self._python = session.python
            try:
                await session.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await session.stop()
                raise
            self.session = session
            self.session_starts += 1
            # An SDK user who never closes must not leave a server behind.
            weakref.finalize(session, kill_process, session.client.process if session.client else None)
            self.synced = self.scanner.scan()   # a new server reads the disk itself
        self.session.config.timeout = timeout
        return self.session

    @property
    def server_starts(self) -> int:
        """Server processes started so far: each session's first start and every restart a
        session made itself when its server died under a request."""
        current = self.session.restarts if self.session is not None else 0
        return self.session_starts + self.dropped_restarts + current

    async def drop_session(self) -> None:
        session, self.session = self.session, None
        self.synced = None
        if session is not None:
            self.dropped_restarts += session.restarts
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.stop(), 15)

    async def warm(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start the server now (the daemon does this before it reports ready)."""
        async with self.lock:
            await self.session_for(timeout)
            await self.refresh()

    async def close(self) -> None:
        await self.drop_session()
        self.scanner.watcher.close()

    # -- freshness ----------------------------------------------------------------
    async def refresh(self, state: dict[str, str] | None = None) -> str:
        """Bring the server up to date with the disk (``state``: a scan taken just now);
        returns the workspace digest ("" when the service keeps no memo)."""
        session = self.session
        state = self._scan() if state is None else state
        if session is not None and self.synced is not None and state != self.synced:
            changes = diff_states(self.synced, state)
            self.disk_changes += len(changes)
            if any(rel in CONFIG_FILES for rel in changes):
                log.info("configuration changed; restarting the server")
                await self.drop_session()
            else:
                try:
                    self._resync(session, changes)
                except LanserError:
                    await self.drop_session()
        if self.session is not None:
            self.synced = state
        if not self.cache:  # no memo to key or prune: the digest is not needed
            return ""
        digest = state_digest(state)
        if digest != self.digest:
            self.memo.keep_only(digest)
            self.digest = digest
        return digest

    def _resync(self, session: Session, changes: dict[str, str]) -> None:
        for rel, kind in sorted(changes.items()):
            if rel not in session.docs:
                continue
            if kind == "deleted":
                session.close(rel)
                continue
            try:
                text = self.ws.read(rel).text
            except LanserError:
                session.close(rel)  # undecodable now: let the server read the disk
                continue
            session.sync(rel, text)
        session.notify_disk_changes({rel: kind for rel, kind in changes.items()
                                     if rel.endswith((".py", ".pyi"))})

    # -- requests -----------------------------------------------------------------
    def options_for(self, options: dict[str, Any]) -> Options:
        """Per-request options; the identity options are the service's own."""
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise InternalError(f"unknown option(s) {', '.join(unknown)}")
        ws = options.get("workspace")
        if ws and ws != str(self.ws.root) and os.path.realpath(ws) != str(self.ws.root):
            raise FsPermissions(f"this daemon serves {self.ws.root}, not {ws}")
        clean = {k: v for k, v in options.items() if k not in IDENTITY_OPTIONS}
        return Options.from_values({**clean, "workspace": str(self.ws.root), "server": self.server_name,
                                    "python": self.python_opt})

    async def handle(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
                     options: dict[str, Any] | None = None) -> bytes:
        """One request -> the bundle as JSON bytes (the same bundle an in-process run gives)."""
        self.requests += 1
        args = dict(args or {})
        try:
            opts = self.options_for(dict(options or {}))
        except LanserError as exc:
            return dump_bundle(error_bundle(cmd, selector, args, exc))
        cacheable = self.cache and cmd in READ_ONLY and not opts.verbose
        if not cacheable:  # mutations, dry runs too (their edits may reach untracked files)
            async with self.lock:
                await self.refresh()
                bundle = await self._run(cmd, selector, args, opts)
                if writes(cmd, args):
                    # The changed Python files alone would drop the memo at the next refresh,
                    # but an apply may write a file the scan does not track: forget everything.
                    self.memo.clear()
                return dump_bundle(bundle)
        memoizable, named = self._named_file(cmd, selector, opts)
        uncontended = not self.lock.locked()
        base = request_key(cmd, selector, args, opts.to_json())
        # What the disk holds now (stat, hash only what moved; the session is not touched):
        # an answer about exactly this state may be reused or shared.
        state = self._scan()
        arrival = state_digest(state)
        rkey = self._with_file(base, named, state) if memoizable else None
        if rkey is None:  # an answer about an untracked file that cannot be read: never memoized
            async with self.lock:
                await self.refresh()
                return dump_bundle(await self._run(cmd, selector, args, opts))
        data = self.memo.get(rkey, arrival)
        if data is not None:
            return data
        fkey = f"{rkey}:{arrival}"
        joined = self.flights.joinable(fkey)
        if joined is not None:
            return await asyncio.shield(joined.future)
        flight = self.flights.lead(fkey)
        try:
            async with self.lock:  # a free lock is taken without yielding: ``state`` is still current
                digest = await self.refresh(state if uncontended else None)  # >= every follower's arrival
                # The named untracked file, as it is now: the key the answer is stored under.
                now = rkey if uncontended or named is None else self._with_file(base, named, state)
                data = self.memo.get(now, digest) if now is not None else None
                if data is None:
                    bundle = await self._run(cmd, selector, args, opts)
                    data = dump_bundle(bundle)
                    if now is not None and bundle["meta"]["exit_code"] in _DETERMINISTIC_CODES:
                        self.memo.put(now, digest, data)
            flight.future.set_result(data)
            return data
        except BaseException as exc:
            if not flight.future.done():
                flight.future.set_exception(exc)
                flight.future.exception()  # retrieved: followers, if any, re-raise it
            raise
        finally:
            self.flights.finish(fkey, flight)

    def _named_file(self, cmd: str, selector: str | None, opts: Options) -> tuple[bool, str | None]:
        """(memoizable, rel): the workspace file a read names directly (a cursor, range or
        anchor selector's file, a PATH target), which may be one the scan does not track (a
        README, a file under ``build/``), so its bytes must join the memo key.  Symbol and
        AST selectors name modules: the tracked Python files decide them.  Selectors with
        ``?v=`` also read the snapshot and git object stores, which no key covers."""
        if selector is None:
            return True, None
        if not isinstance(selector, str):  # a malformed request from a raw socket client
            return False, None
        path: str | None = selector
        if cmd not in ("symbols", "diag") or looks_like_selector(selector):
            try:
                spec = parse_selector(selector, indexing=opts.index_io)
            except LanserError:
                return True, None  # a syntax error depends on no file
            if spec.doc_version is not None:
                return False, None
            path = spec.path if spec.kind in ("cursor", "range", "anchor") else None
        if path is None:
            return True, None
        try:
            return True, self.ws.resolve(path, must_exist=False)[1]
        except LanserError:
            return False, None  # outside the jail, or no path at all: cheap to answer afresh

    def _with_file(self, base: str, rel: str | None, state: dict[str, str]) -> str | None:
        """The memo key: ``base``, plus the bytes' hash of a named file the scan does not track
        (None when that file cannot be read: such an answer is not memoized)."""
        if rel is None or rel in state:
            return base
        try:
            with open(self.ws.root / rel, "rb") as fh:
                tag = hashlib.sha256(fh.read()).hexdigest()
        except (FileNotFoundError, NotADirectoryError):
            tag = "missing"
        except IsADirectoryError:
            tag = "directory"
        except OSError:
            return None
        return f"{base}:{rel}:{tag}"

    def _scan(self) -> dict[str, str]:
        return self.scanner.scan(list(self.session.docs) if self.session is not None else ())

    async def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None,
                  options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like :meth:`handle`, as a fresh dict the caller may keep or change."""
        return orjson.loads(await self.handle(cmd, selector, args, options))

    async def _run(self, cmd: str, selector: str | None, args: dict[str, Any], opts: Options) -> dict[str, Any]:
        for attempt in range(2):
            engine = self._engine(opts)
            bundle = await engine.run(cmd, selector, args)
            code = (bundle.get("error") or {}).get("code")
            if code == "E/LS_CRASH" and attempt == 0 and not writes(cmd, args):
                log.warning("E/LS_CRASH during %s; retrying on a new server", cmd)
                await self.drop_session()
                continue
            if cmd not in READ_ONLY:
                self._reconcile()
            return bundle
        raise AssertionError("unreachable")

    def _engine(self, opts: Options) -> "_SharedEngine":
        """An engine for these options, reused; it borrows the session afresh on every run,
        as a new in-process engine would (no session until its handler asks for one)."""
        engine = self._engines.get(opts)
        if engine is None:
            if len(self._engines) >= 32:
                self._engines.clear()
            engine = self._engines[opts] = _SharedEngine(opts, self)
        engine.release()
        return engine

    def _reconcile(self) -> None:
        """After a mutating command: every open document shows the disk's text again."""
        session = self.session
        if session is None or not self.session_alive():
            return
        for rel, doc in sorted(session.docs.items()):
            try:
                text = self.ws.read(rel).text
            except LanserError:
                session.close(rel)
                continue
            if doc.text != text:
                session.sync(rel, text)

    # -- status ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        s = self.session
        pid = s.pid if s is not None else None
        return {
            "workspace": str(self.ws.root), "server": self.server_name, "python": self.python_opt,
            "cache": self.cache,
            "requests": self.requests, "memoHits": self.memo.hits, "memoEntries": len(self.memo),
            "coalesced": self.flights.coalesced, "serverStarts": self.server_starts,
            "diskChanges": self.disk_changes, "filesHashed": self.scanner.rehashed,
            "fullScans": self.scanner.full_scans, "watching": self.scanner.watcher.active,
            "serverProcess": {"pid": pid, "alive": self.session_alive(), "rssKb": rss_kb(pid)},
            "openDocuments": len(s.docs) if s is not None else 0,
        }


def rss_kb(pid: int | None) -> int | None:
    """Resident memory of a process in KiB (``VmRSS`` of /proc/<pid>/status), None if unknown."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
