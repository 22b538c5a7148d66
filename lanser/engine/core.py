"""The engine: one workspace, one lazily started server, every operation as a bundle.

The CLI, ``batch``, ``reward``, the daemon and the SDK all go through
:class:`Engine`, so the same request gives the same bundle whichever door it
came in by.  ``run`` never raises a LanserError: failures become error
bundles with the contract's exit code.
"""

from __future__ import annotations

import inspect
import platform as _platform
import time
from typing import Any, Awaitable, Callable, Sequence

from .. import codec
from ..bundles.envelope import BUNDLE_VERSION, build_bundle, error_bundle
from ..errors import BadInput, InternalError, LanserError
from ..options import Options
from ..server.pyenv import PythonEnv, choose_python, search_paths
from ..server.registry import ServerSpec, server_spec
from ..server.session import FrameHook, Session, SessionConfig
from ..version import __version__
from ..workspace import Workspace
from .context import Context, Request
from .mutations import mutation_handlers
from .navigation import navigation_handlers

__all__ = ["BUNDLE_VERSION", "Context", "Engine", "Options", "Request", "error_bundle"]

SERVER_ENCODING = "utf-16"  # what the pinned servers use (they do not offer utf-8)
_PLATFORM = f"{_platform.system().lower()}-{_platform.machine()}"

class Engine:
    """Holds the workspace and (once needed) a warm server session."""

    def __init__(self, options: Options, *, frame_hook: FrameHook | None = None,
                 session_factory: Callable[..., Session] | None = None,
                 spec: ServerSpec | None = None) -> None:
        self.options = options
        codec.check_encoding(options.index_io)
        self.ws = Workspace(options.workspace)
        self.frame_hook = frame_hook
        # True once the running command's apply has passed its commit point: from then on a
        # Ctrl-C must not lose the report of the edit that landed (cli.run_async).
        self.committed = False
        self.session: Session | None = None
        self._python: PythonEnv | None = None
        self._providers: tuple[Any, tuple[str, ...]] | None = None  # (server info, provider names)
        # Trace replay passes a session answering from recorded frames, and the recorded server.
        self.session_factory = session_factory or Session
        self.cleanups: list[Callable[[], Any]] = []  # run by close(), last added first
        self.fact_listeners: list[Callable[[str, Any, Any], Any]] = []  # told each environment fact
        self.spec = spec or server_spec(options.server)
        self.handlers: dict[str, Callable[[Request, Context], Awaitable[None]]] = {
            **navigation_handlers(), **mutation_handlers()}

    # -- lifecycle ------------------------------------------------------------
    async def server(self) -> Session:
        if self.session is None:
            config = SessionConfig(server=self.options.server, python=self.options.python,
                                   timeout=self.options.timeout, frame_hook=self.frame_hook)
            session = self.session_factory(self.ws, config)
            self._python = session.python
            await session.start()
            self.session = session
        return self.session

    async def analyzer(self, name: str) -> Session:
        """A started session of a second analyzer (``ruff``) on this workspace, stopped by
        :meth:`close`; its frames go to the same trace as the server's."""
        from ..server.registry import ruff_spec

        if name != "ruff":
            raise BadInput(f"unknown analyzer {name!r}; the second analyzer is ruff")
        config = SessionConfig(server=name, timeout=self.options.timeout, frame_hook=self.frame_hook)
        session = self.session_factory(self.ws, config, ruff_spec())
        await session.start()
        self.cleanups.append(session.stop)
        return session

    async def close(self) -> None:
        try:
            if self.session is not None:
                session, self.session = self.session, None
                await session.stop()
        finally:
            cleanups, self.cleanups = self.cleanups, []
            for fn in reversed(cleanups):
                result = fn()
                if inspect.isawaitable(result):
                    await result

    # -- facts read from the environment (a replay answers them from the trace) -----------------
    def library_fact(self, external: frozenset[str], workspace_tops: frozenset[str],
                     stdlib: frozenset[str]) -> frozenset[str]:
        """Which of the libraries ``external`` reach a workspace module (diagnostics/libraries.py)."""
        from ..diagnostics.libraries import reaching_libraries
        from ..diagnostics.stdlib import typeshed_dir

        typeshed = typeshed_dir(self.spec.name)
        answer = reaching_libraries(external, workspace_tops, stdlib, search_paths(self.python),
                                    typeshed / "stubs" if typeshed is not None else None)
        for listener in list(self.fact_listeners):
            listener("libraries", sorted(external), sorted(answer))
        return answer

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def python(self) -> PythonEnv:
        if self._python is None:
            self._python = choose_python(self.ws.root, self.options.python)
        return self._python

    # -- environment ---------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        s = self.session
        encoding = s.info.position_encoding if s and s.info else SERVER_ENCODING
        digest = s.config_digest() if s else Session.static_config_digest(self.ws)
        return {
            "server": {"name": self.spec.name, "version": self.spec.version},
            "positionEncoding": encoding,
            "python": {"version": self.python.version},
            "configDigest": digest,
            "platform": _PLATFORM,
            "lanserVersion": __version__,
        }

    def capabilities(self) -> dict[str, Any]:
        s = self.session
        info = s.info if s else None
        if self._providers is None or self._providers[0] is not info:
            caps = info.capabilities if info else {}
            self._providers = (info, tuple(sorted(k for k, v in caps.items() if v and k.endswith("Provider"))))
        return {"partialResult": False, "cancellable": True, "server": list(self._providers[1])}

    @property
    def encoding(self) -> str:
        s = self.session
        return s.info.position_encoding if s and s.info else SERVER_ENCODING

    # -- running ---------------------------------------------------------------
    async def run(self, cmd: str, selector: str | None = None, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one command and return its bundle (ok or error); never raises LanserError."""
        req = Request(cmd, selector, dict(args or {}))
        ctx = Context(self, req)
        self.committed = False
        started = time.monotonic()
        try:
            handler = self.handlers.get(cmd)
            if handler is None:
                raise BadInput(f"unknown command {cmd!r}; one of {', '.join(sorted(self.handlers))}")
            await handler(req, ctx)
        except LanserError as exc:
            ctx.error = exc
        except Exception as exc:  # an internal failure: exit 1 with a message, no traceback
            ctx.error = InternalError(f"internal error: {type(exc).__name__}: {exc}")
        ctx.elapsed = time.monotonic() - started
        return ctx.bundle()

    # -- bundles -----------------------------------------------------------------
    def bundle(self, request: dict[str, Any], *, error: LanserError | None = None,
               resolution: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
               edits: dict[str, Any] | None = None, process_reward: dict[str, Any] | None = None,
               meta: dict[str, Any] | None = None, elapsed: float = 0.0) -> dict[str, Any]:
        """A bundle of this engine (commands and the reward runner's steps alike): the
        envelope (:func:`lanser.bundles.envelope.build_bundle`) with this engine's
        environment, capabilities and ``meta.indexIo``; with ``--verbose``, ``meta.volatile``
        and an ``ioRange`` beside each range when ``--index-io`` differs from the server's."""
        opts = self.options
        out_meta: dict[str, Any] = {"indexIo": opts.index_io, **(meta or {})}
        if opts.verbose:
            out_meta["volatile"] = {"elapsedMs": round(elapsed * 1000, 3), "root": str(self.ws.root),
                                    "python": self.python.path, "pythonFull": self.python.full_version,
                                    "serverPid": self.session.pid if self.session else None}
            if opts.index_io != self.encoding:
                _add_io_ranges(resolution, facts, self)
        return build_bundle(request, error=error, resolution=resolution, facts=facts, edits=edits,
                            process_reward=process_reward, environment=self.environment(),
                            capabilities=self.capabilities(), meta=out_meta)




def _add_io_ranges(resolution: Any, facts: Any, eng: Engine) -> None:
    """--verbose: an ``ioRange`` in --index-io units beside every workspace range."""
    cache: dict[str, Sequence[str] | None] = {}

    def lines_of(path: str) -> Sequence[str] | None:
        if path not in cache:
            try:
                cache[path] = eng.ws.read(path).lines
            except LanserError:
                cache[path] = None
        return cache[path]

    def visit(node: Any, path: str | None) -> None:
        if isinstance(node, dict):
            here = node.get("path", path) if isinstance(node.get("path", path), str) else path
            for key in ("range", "selectionRange"):
                rng = node.get(key)
                if here and isinstance(rng, list) and len(rng) == 4 and "://" not in here:
                    lines = lines_of(here)
                    if lines is not None:
                        try:
                            node["io" + key[0].upper() + key[1:]] = codec.convert_range(
                                lines, rng, eng.encoding, eng.options.index_io)
                        except LanserError:
                            pass
            for k, v in list(node.items()):
                if k not in ("range", "selectionRange"):
                    visit(v, here)
        elif isinstance(node, list):
            for v in node:
                visit(v, path)

    visit(resolution, None)
    visit(facts, None)
