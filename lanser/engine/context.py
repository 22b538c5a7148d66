"""What one command has gathered (:class:`Context`) for one :class:`Request`.

The handlers (``navigation``, ``mutations``) and the reward runner's planning
fill a Context: the parsed selector, its resolution, facts, edits, the process
reward or the error; :meth:`Context.bundle` hands them to the engine's one
envelope builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types as T

from ..errors import LanserError, NotFound
from ..selectors import SelectorSpec, parse_selector, resolve_selector
from ..selectors.resolution import Resolution
from ..server.session import Session

if TYPE_CHECKING:  # core imports this module; the engine is only named in annotations here
    from .core import Engine


@dataclass
class Request:
    cmd: str
    selector: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


class Context:
    """What one command has gathered so far; turns into the bundle."""

    def __init__(self, engine: Engine, req: Request) -> None:
        self.engine = engine
        self.req = req
        self.spec: SelectorSpec | None = None
        self.resolution: Resolution | None = None
        self.facts: dict[str, Any] | None = None
        self.edits: dict[str, Any] | None = None
        self.process_reward: dict[str, Any] | None = None
        self.error: LanserError | None = None
        self.meta: dict[str, Any] = {}
        self.elapsed = 0.0

    # -- selector -------------------------------------------------------------
    def parse(self) -> SelectorSpec:
        if self.req.selector is None:
            raise NotFound(f"{self.req.cmd} needs a selector")
        self.spec = parse_selector(self.req.selector, indexing=self.engine.options.index_io)
        return self.spec

    def resolve(self) -> Resolution:
        spec = self.spec or self.parse()
        # Only `locate` reports a freshly minted anchor; minting costs more than a warm def.
        self.resolution = resolve_selector(spec, self.engine.ws, original=self.req.selector or "",
                                           encoding=self.engine.encoding, anchor=self.req.cmd == "locate")
        return self.resolution

    def position(self) -> tuple[str, T.Position]:
        """The resolved target's selection start: what the server is asked about."""
        res = self.resolution or self.resolve()
        sl, sc = res.selection_range[0], res.selection_range[1]
        return res.path, T.Position(line=sl, character=sc)

    async def sync_target(self, session: Session, rel: str) -> str:
        """Send the target file's current text so the server answers about what is on disk."""
        res = self.resolution
        src = res.source if res is not None and res.path == rel and res.source is not None else None
        session.sync(rel, (src or self.engine.ws.read(rel)).text)
        return session.uri(rel)

    # -- bundle ----------------------------------------------------------------
    def bundle(self) -> dict[str, Any]:
        """The command's bundle (the envelope: :meth:`Engine.bundle`)."""
        request: dict[str, Any] = {"cmd": self.req.cmd, "selector": self.spec.to_json() if self.spec else None,
                                   "args": self.req.args}
        resolution = self.resolution.to_json() if self.resolution else None
        err = self.error
        candidates = getattr(err, "candidates", None)  # E/AMBIGUOUS ranks them
        if candidates:
            resolution = resolution or {"original": self.req.selector, "canonical": None, "resolved": None}
            resolution["disambiguation"] = candidates
        return self.engine.bundle(request, error=err, resolution=resolution, facts=self.facts, edits=self.edits,
                                  process_reward=self.process_reward, meta=self.meta, elapsed=self.elapsed)
