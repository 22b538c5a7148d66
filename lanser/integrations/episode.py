"""One rollout = one Lanser session: the piece every framework adapter is built on.

    client = shared_client("path/to/repo", options={"clip": 5})   # one warm server per base
    ep = Episode(client)
    turn = ep.act(agent_text)        # parse, step, observe: Turn(record, observation, reward, done)
    final = ep.finish("min")         # {"return": ..., "records": [...]} and the session is freed

``act``/``take`` block; ``aact``/``atake``/``afinish`` are their awaitable twins
(any event loop).  A turn's reward is the step record's ``processReward.r``
unchanged; a ``submit`` takes no step (reward 0, done).  :func:`client_for`
builds the client from the keyword configuration the adapters share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .actions import Action, parse_action, render_observation
from .backend import RewardClient, StepAnswer, shared_client

Record = dict[str, Any]


@dataclass
class Turn:
    """What one agent turn produced."""

    record: Record | None
    observation: str
    reward: float
    done: bool = False
    bundle: dict[str, Any] | None = None


def client_for(repo: str | None = None, *, client: RewardClient | None = None, url: str | None = None,
               base: str | None = None, options: Mapping[str, Any] | None = None,
               engine: Mapping[str, Any] | None = None, token: str | None = None) -> RewardClient:
    """The given client, else the shared one for (repo, url, base, options)."""
    if client is not None:
        return client
    if not repo:
        raise ValueError("give a repository (or a reward client)")
    return shared_client(repo, url=url, base=base, options=options, engine=engine, token=token)


@dataclass
class Episode:
    """A session on ``client``, opened at the first step."""

    client: RewardClient
    session: str | None = None
    turns: int = 0
    records: list[Record] = field(default_factory=list)
    closed: dict[str, Any] | None = None

    # -- blocking ---------------------------------------------------------------------
    def begin(self) -> str:
        if self.session is None:
            self.session = self.client.open()
        return self.session

    def take(self, step: Mapping[str, Any], *, problem: str | None = None) -> Turn:
        """Score one step dict (CONTRACT.md section 5)."""
        return self._turn(self.client.step(self.begin(), step), problem)

    def act(self, text: str) -> Turn:
        """Parse one agent turn (lanser.integrations.actions) and score it."""
        action = parse_action(text)
        if action.submit:
            return self._submitted()
        return self.take(_step_of(action), problem=action.problem)

    def finish(self, mode: str = "sum") -> dict[str, Any]:
        """Close the session: ``{"return", "records", ...}`` under ``mode`` (sum|min); idempotent."""
        if self.closed is None:
            self.closed = (self.client.close_session(self.session, mode) if self.session is not None
                           else _empty(mode))
        return self.closed

    # -- awaitable --------------------------------------------------------------------
    async def abegin(self) -> str:
        if self.session is None:
            self.session = await self.client.aopen()
        return self.session

    async def atake(self, step: Mapping[str, Any], *, problem: str | None = None) -> Turn:
        sid = await self.abegin()
        return self._turn(await self.client.astep(sid, step), problem)

    async def aact(self, text: str) -> Turn:
        action = parse_action(text)
        if action.submit:
            return self._submitted()
        return await self.atake(_step_of(action), problem=action.problem)

    async def afinish(self, mode: str = "sum") -> dict[str, Any]:
        if self.closed is None:
            self.closed = (await self.client.aclose_session(self.session, mode) if self.session is not None
                           else _empty(mode))
        return self.closed

    # -- shared -----------------------------------------------------------------------
    def _turn(self, answer: StepAnswer, problem: str | None) -> Turn:
        self.turns += 1
        record = answer.record
        self.records.append(record)
        reward = float(record["processReward"]["r"])
        return Turn(record, render_observation(record, bundle=answer.bundle, problem=problem), reward,
                    bundle=answer.bundle)

    def _submitted(self) -> Turn:
        self.turns += 1
        return Turn(None, "[lanser] submitted", 0.0, done=True)

    @property
    def rewards(self) -> list[float]:
        return [float(r["processReward"]["r"]) for r in self.records]


def _step_of(action: Action) -> dict[str, Any]:
    assert action.step is not None
    return action.step


def _empty(mode: str) -> dict[str, Any]:
    return {"session": None, "aggregate": mode, "steps": 0, "return": 0.0, "records": []}


__all__ = ["Episode", "Turn", "client_for"]
