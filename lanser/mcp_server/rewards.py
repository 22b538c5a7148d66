"""``reward_step`` and ``reward_session_summary``: per-session trajectories and their rewards.

A *reward session* (named by the caller, ``"default"`` unless given) holds two
trajectories, each scored by Lanser's reward runner exactly as ``lanser
reward`` scores a STEPS file:

* **preview** (``apply=false``, the default): the step joins the session's
  in-memory trajectory in a :class:`~lanser.rewards.sessions.SharedRunner`.
  Nothing is written (not even ``.lanser/``); the session's earlier previewed
  steps are in its copy, nothing else is.  The trajectory's base is the
  workspace as it was at the session's first preview, and its records are
  byte-identical to ``lanser reward --in-memory`` of the same steps on that
  base.  Sessions that start on the same workspace state share one warm
  runner (one server); a session that starts after the workspace changed gets
  a runner on the new state.  At most :data:`MAX_BASES` runners live at once:
  beyond that the least recently used one is stopped, and its sessions'
  previews answer E/NOT_FOUND until the session is closed and started again.
* **applied** (``apply=true``): the step is applied to the workspace by a
  :class:`~lanser.rewards.runner.TrajectoryRunner` on disk, through the same
  safety envelope as ``lanser reward`` (the server's ``--allow``/``--deny``,
  ``--deny-apply-on-ambiguous``, a clean git tree unless ``--allow-dirty``;
  the runner's own earlier steps do not make the tree "dirty").  ``D_prev``
  is the workspace's diagnostics just before the step.  One runner serves
  every session of this server; when the workspace changed since its last
  step (another agent, a ``rename`` through the daemon) it is restarted on
  the current state first, so the reward is always about the tree as it is
  (and a tree left dirty by others then needs ``--allow-dirty``).  ``reset``
  is refused here: on a shared workspace it would undo other sessions' steps
  (use git).

A failed step is not a tool error: it is a record with ``status: "error"``,
its exit code and S = 0, as in ``lanser reward``.  The runners' servers are
this process's own (a trajectory needs a server whose history is its own, so
they cannot be the daemon's shared one); they start on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput, NotFound
from .settings import McpSettings

log = logging.getLogger("lanser.mcp")

MAX_BASES = 3


@dataclass
class _Session:
    name: str
    preview: list[dict[str, Any]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    base: str | None = None          # digest of the preview trajectory's base
    runner_sid: str | None = None    # its session id in that base's SharedRunner
    retired: bool = False


@dataclass
class _Base:
    digest: str
    runner: Any                      # SharedRunner
    used: int = 0                    # logical clock of the last use (LRU)


class RewardDesk:
    def __init__(self, settings: McpSettings) -> None:
        self.settings = settings
        self.sessions: dict[str, _Session] = {}
        self._bases: dict[str, _Base] = {}
        self._clock = 0
        self._disk: Any = None        # TrajectoryRunner on the workspace
        self._disk_digest: str | None = None
        self._lock = asyncio.Lock()   # runner creation, the disk runner's steps
        self._scanner: Any = None

    # -- the workspace's state ----------------------------------------------------------
    def _digest(self) -> str:
        """A digest of the workspace's Python and configuration files as they are now."""
        from ..daemon.cache import Scanner, state_digest
        from ..workspace import Workspace

        if self._scanner is None:
            self._scanner = Scanner(Workspace(self.settings.workspace))
        return state_digest(self._scanner.scan())

    # -- steps --------------------------------------------------------------------------
    async def step(self, session: str, step: Any, *, apply: bool) -> dict[str, Any]:
        """Run one step in ``session``; its reward record."""
        s = self.sessions.get(session)
        if s is None:
            s = self.sessions[session] = _Session(session)
        if apply:
            return await self._apply(s, step)
        return await self._preview(s, step)

    async def _preview(self, s: _Session, step: Any) -> dict[str, Any]:
        async with self._lock:  # a runner is never stopped under a step
            if s.retired:
                raise NotFound(f"the preview trajectory of reward session {s.name!r} was stopped (more than "
                               f"{MAX_BASES} workspace states were in use); close the session with "
                               f"reward_session_summary(close=true) and preview again")
            if s.base is None:
                base = await self._base_for(await asyncio.to_thread(self._digest))
                s.base, s.runner_sid = base.digest, base.runner.open()
            base = self._bases[s.base]
            self._clock += 1
            base.used = self._clock
            assert s.runner_sid is not None
            record: dict[str, Any] = await base.runner.step(s.runner_sid, step)
        s.preview.append(record)
        return record

    async def _base_for(self, digest: str) -> _Base:
        """The shared in-memory runner whose base is the workspace state ``digest``."""
        found = self._bases.get(digest)
        if found is not None:
            return found
        from ..rewards.runner import RewardOptions
        from ..rewards.sessions import SharedRunner

        # Runners of older states that no session uses any more cannot be used again.
        for old in [b for b in self._bases.values() if not self._users(b.digest)]:
            await self._stop_base(old)
        while len(self._bases) >= MAX_BASES:
            await self._stop_base(min(self._bases.values(), key=lambda b: b.used))
        runner = SharedRunner(self.settings.workspace, RewardOptions(in_memory=True),
                              engine_options=self.settings.engine_options())
        try:
            await runner.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await runner.aclose()
            raise
        base = self._bases[digest] = _Base(digest, runner)
        return base

    def _users(self, digest: str) -> list[_Session]:
        return [s for s in self.sessions.values() if s.base == digest and not s.retired]

    async def _stop_base(self, base: _Base) -> None:
        for s in self._users(base.digest):
            s.retired = True
        del self._bases[base.digest]
        with contextlib.suppress(Exception):
            await base.runner.aclose()

    async def _apply(self, s: _Session, step: Any) -> dict[str, Any]:
        if isinstance(step, dict) and step.get("op") == "reset":
            raise BadInput("reset is a preview step only: applied steps land in a shared workspace, where a "
                           "reset would undo other sessions' steps too (undo applied steps with git)")
        from ..rewards.sessions import as_item

        async with self._lock:
            runner = await self._disk_runner()
            runner.step_no = len(s.applied)  # the record's step number counts this session's steps
            record: dict[str, Any] = await runner.run_step(as_item(step, len(s.applied) + 1))
            self._disk_digest = await asyncio.to_thread(self._digest)
        s.applied.append(record)
        return record

    async def _disk_runner(self) -> Any:
        """The on-disk runner, restarted when the workspace changed since its last step."""
        now = await asyncio.to_thread(self._digest)
        if self._disk is not None and now != self._disk_digest:
            log.info("the workspace changed since the last applied step; restarting the reward runner")
            await self._stop_disk()
        if self._disk is None:
            from ..engine import Engine
            from ..rewards.runner import RewardOptions, TrajectoryRunner

            runner = TrajectoryRunner(Engine(self.settings.engine_options()), RewardOptions())
            try:
                await runner.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await runner.engine.close()
                raise
            self._disk, self._disk_digest = runner, now
        return self._disk

    async def _stop_disk(self) -> None:
        runner, self._disk, self._disk_digest = self._disk, None, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.engine.close()

    # -- summaries ------------------------------------------------------------------------
    async def summary(self, session: str, mode: str = "sum", *, close: bool = False) -> dict[str, Any]:
        """Both trajectories of a session with ``value``/``return`` under ``mode``; ``close``
        forgets the session (its preview copy is dropped)."""
        from ..rewards.records import aggregate

        s = self.sessions.get(session)
        if s is None:
            known = ", ".join(repr(n) for n in sorted(self.sessions)) or "none yet"
            raise NotFound(f"no reward session {session!r} (sessions: {known}); reward_step starts one")

        def part(records: list[dict[str, Any]]) -> dict[str, Any]:
            final = aggregate(records, mode) if records else []
            return {"steps": len(final), "return": final[0]["return"] if final else 0.0, "records": final}

        out = {"session": session, "aggregate": mode, "preview": part(s.preview), "applied": part(s.applied),
               "closed": close}
        if close:
            async with self._lock:
                del self.sessions[session]
                base = self._bases.get(s.base) if s.base is not None and not s.retired else None
                if base is not None and s.runner_sid is not None:
                    with contextlib.suppress(NotFound):
                        base.runner.close(s.runner_sid)
        return out

    async def close(self) -> None:
        """Stop every runner's server."""
        for base in list(self._bases.values()):
            await self._stop_base(base)
        await self._stop_disk()
        if self._scanner is not None:
            with contextlib.suppress(Exception):
                self._scanner.watcher.close()
