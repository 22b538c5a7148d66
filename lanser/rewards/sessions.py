"""Many trajectories of one base on one warm server: the reward service's unit of work.

A GRPO group's rollouts share a base; starting one language server per rollout
(0.3-2.5 GB each) is what a trainer cannot afford.  :class:`SharedRunner`
keeps one in-memory :class:`~lanser.rewards.runner.TrajectoryRunner` (its own
mirror of the base, nothing ever written to the base) and any number of
*sessions*, each a trajectory with its own files, diagnostics and step count.
Before a session's step the runner is switched to that session's state: only
the files in which the two states differ are re-sent to the server, and the
session's diagnostics are already known, so nothing is pulled for the switch
(:meth:`TrajectoryRunner.load_state`).  A step's record depends only on the
session's own steps, so records are byte-identical to ``lanser reward
--in-memory`` on the same steps however sessions interleave.

Steps of one runner run one at a time (a lock); a service that needs more
throughput for a base starts more runners for it and pins each session to one.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..engine import Engine, Options
from ..errors import NotFound
from .records import aggregate
from .runner import Record, RewardOptions, RunnerState, TrajectoryRunner
from .steps import BadLine, BadStep, Step, validate_step


@dataclass
class Trajectory:
    """One session: its state between steps and the records it got."""

    id: str
    state: RunnerState
    records: list[Record] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # every step as given (to rebuild the session)
    taken: int = 0  # steps run (the next step's line number is taken + 1)
    options: RewardOptions | None = None  # this session's scoring (None: the runner's)


def as_item(step: Mapping[str, Any] | Step | BadLine, line: int) -> Step | BadLine:
    """A step dict as the runner takes it (a malformed one becomes an error record)."""
    if isinstance(step, (Step, BadLine)):
        return step
    try:
        return validate_step(dict(step) if isinstance(step, Mapping) else step, line)
    except BadStep as exc:
        return BadLine(line, exc, step)


class SharedRunner:
    """One warm server for one base, shared by many sessions (see the module docstring)."""

    def __init__(self, workspace: str, options: RewardOptions | None = None, *,
                 engine_options: Options | None = None, keep_history: bool = True) -> None:
        """``keep_history=False``: a session keeps only its state, not its steps and records
        (the reward service's router keeps those; a worker holding them too would double a
        long session's memory); :meth:`close` then returns no records."""
        opts = options or RewardOptions(in_memory=True)
        if not opts.in_memory:
            raise ValueError("a shared runner runs in memory")
        self.engine = Engine(engine_options or Options(workspace=workspace))
        self.runner = TrajectoryRunner(self.engine, opts)
        self._options = opts
        self.sessions: dict[str, Trajectory] = {}
        self._initial: RunnerState | None = None
        self._current: str | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.keep_history = keep_history

    @property
    def options(self) -> RewardOptions:
        """The runner's default scoring (sessions may have their own)."""
        return self._options

    async def start(self) -> None:
        async with self._lock:
            if self._initial is None:
                await self.runner.start()
                self._initial = self.runner.save_state()

    def open(self, session_id: str | None = None, options: RewardOptions | None = None) -> str:
        """A new session at the base; returns its id.  ``options``: the session's own scoring
        (severities, scope, weights, ...), which only shape its records: the server, the files
        and the diagnostics are the same whatever they are.  Must be in memory."""
        if self._initial is None:
            raise RuntimeError("start() the shared runner first")
        if options is not None and not options.in_memory:
            raise ValueError("a shared runner runs in memory")
        sid = session_id or f"s{next(self._ids)}"
        if sid in self.sessions:
            raise ValueError(f"session {sid!r} exists")
        self.sessions[sid] = Trajectory(sid, self._initial, options=options)
        return sid

    def get(self, session_id: str) -> Trajectory:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise NotFound(f"no session {session_id!r}") from None

    async def step(self, session_id: str, step: Mapping[str, Any] | Step | BadLine) -> Record:
        """Run one step of a session and return its record."""
        traj = self.get(session_id)
        item = as_item(step, traj.taken + 1)
        async with self._lock:
            if self._current != session_id:
                self.runner.load_state(traj.state)
                self._current = session_id
            self.runner.options = traj.options or self._options
            record = await self.runner.run_step(item)
            traj.state = self.runner.save_state()
        traj.taken += 1
        if self.keep_history:
            traj.steps.append(step)
            traj.records.append(record)
        return record

    async def score(self, steps: Iterable[Mapping[str, Any] | Step]) -> list[Record]:
        """A whole trajectory in a fresh session (closed afterwards)."""
        sid = self.open()
        try:
            return [await self.step(sid, s) for s in steps]
        finally:
            self.close(sid)

    def close(self, session_id: str, mode: str = "sum") -> dict[str, Any]:
        """Free a session: its records with ``value``/``return`` under ``mode`` (sum or min)."""
        traj = self.get(session_id)
        del self.sessions[session_id]
        if self._current == session_id:
            self._current = None
        final = aggregate(traj.records, mode) if traj.records else []
        return {"session": session_id, "aggregate": mode, "steps": len(final),
                "return": final[0]["return"] if final else 0.0, "records": final}

    async def aclose(self) -> None:
        await self.engine.close()


__all__ = ["SharedRunner", "Trajectory", "as_item"]
