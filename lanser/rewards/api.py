"""Trainer API: score many trajectories of one repository on one warm server.

    from lanser.rewards.api import RewardScorer

    with RewardScorer("path/to/repo") as scorer:          # in memory by default
        for steps in trajectories:
            records = scorer.score(steps)                  # list[dict], one per step
            rewards = [r["processReward"]["r"] for r in records]

Every :meth:`score` call starts from the base (the repository as it was when
the scorer started): whatever the previous trajectory changed is restored
first, so trajectories are independent and a replay gives identical records.
``in_memory=True`` (the default here, unlike the CLI) never writes to the
repository, so many scorers can share one checkout.  Invalid step dicts give
error records (exitCode 2) instead of exceptions; a server that cannot be
started or dies twice raises its LanserError.

:class:`AsyncRewardScorer` is the same for code that already runs an event
loop; :class:`RewardScorer` owns a private loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Mapping

from ..engine import Engine
from ..options import DEFAULT_SERVER, DEFAULT_TIMEOUT, Options
from .formula import DEFAULT_WEIGHTS, Weights, parse_weights
from .runner import RewardOptions, TrajectoryRunner
from .steps import BadLine, BadStep, Step, validate_step


def _weights(value: Weights | Mapping[str, float] | str | None) -> Weights:
    if value is None:
        return DEFAULT_WEIGHTS
    if isinstance(value, Weights):
        return value
    if isinstance(value, str):
        return parse_weights(value)
    return Weights(**dict(value))


def make_options(*, severities: Iterable[str] = ("error",), scope: str = "workspace",
                 diag_term: str = "delta", weights: Weights | Mapping[str, float] | str | None = None,
                 clip: float | None = None, aggregate: str | None = None,
                 in_memory: bool = True, by_file: str = "changed",
                 analyzers: Iterable[str] = ("pyright",)) -> RewardOptions:
    """RewardOptions from keyword arguments (ValueError for bad values)."""
    return RewardOptions(severities=tuple(severities), scope=scope, diag_term=diag_term,
                         weights=_weights(weights), clip=clip, aggregate=aggregate, in_memory=in_memory,
                         by_file=by_file, analyzers=tuple(analyzers))


def _items(steps: Iterable[Mapping[str, Any] | Step]) -> list[Step | BadLine]:
    out: list[Step | BadLine] = []
    for n, s in enumerate(steps, start=1):
        if isinstance(s, Step):
            out.append(s)
            continue
        try:
            out.append(validate_step(dict(s) if isinstance(s, Mapping) else s, n))
        except BadStep as exc:
            out.append(BadLine(n, exc, s))
    return out


class AsyncRewardScorer:
    """One warm session for one repository; ``await score(steps)`` per trajectory."""

    def __init__(self, workspace: str, *, severities: Iterable[str] = ("error",), scope: str = "workspace",
                 diag_term: str = "delta", weights: Weights | Mapping[str, float] | str | None = None,
                 clip: float | None = None, aggregate: str | None = None, in_memory: bool = True,
                 by_file: str = "changed", analyzers: Iterable[str] = ("pyright",), server: str = DEFAULT_SERVER,
                 python: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 allow_dirty: bool = False, deny_apply_on_ambiguous: bool = False,
                 allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self.options = make_options(severities=severities, scope=scope, diag_term=diag_term,
                                    weights=weights, clip=clip, aggregate=aggregate, in_memory=in_memory,
                                    by_file=by_file, analyzers=analyzers)
        self.engine = Engine(Options(workspace=str(workspace), server=server, python=python, timeout=timeout,
                                     allow_dirty=allow_dirty, deny_apply_on_ambiguous=deny_apply_on_ambiguous,
                                     allow=tuple(allow), deny=tuple(deny)))
        self.runner = TrajectoryRunner(self.engine, self.options)
        self._lock = asyncio.Lock()

    async def start(self) -> "AsyncRewardScorer":
        await self.runner.start()
        return self

    async def score(self, steps: Iterable[Mapping[str, Any] | Step]) -> list[dict[str, Any]]:
        """Records of one trajectory, scored from the base; the base is restored afterwards."""
        items = _items(steps)
        async with self._lock:
            await self.runner.start()
            await self.runner.silent_reset()
            self.runner.step_no = 0
            try:
                return await self.runner.run(items)
            finally:
                await self.runner.silent_reset()

    async def close(self) -> None:
        """Restore the base (disk mode) and stop the server."""
        try:
            if self.runner.started and self.engine.session is not None:
                await self.runner.silent_reset()
        finally:
            await self.engine.close()

    async def __aenter__(self) -> "AsyncRewardScorer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class RewardScorer:
    """Synchronous :class:`AsyncRewardScorer` with its own event loop (not thread-safe)."""

    def __init__(self, workspace: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._inner = AsyncRewardScorer(workspace, **options)
            self._loop.run_until_complete(self._inner.start())
        except BaseException:
            self._loop.run_until_complete(self._safe_close())
            self._loop.close()
            raise

    async def _safe_close(self) -> None:
        inner = getattr(self, "_inner", None)
        if inner is not None:
            await inner.engine.close()

    @property
    def options(self) -> RewardOptions:
        return self._inner.options

    def score(self, steps: Iterable[Mapping[str, Any] | Step]) -> list[dict[str, Any]]:
        return self._loop.run_until_complete(self._inner.score(steps))

    def score_many(self, trajectories: Iterable[Iterable[Mapping[str, Any]]]) -> list[list[dict[str, Any]]]:
        return [self.score(t) for t in trajectories]

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self._inner.close())
        finally:
            self._loop.close()

    def __enter__(self) -> "RewardScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["AsyncRewardScorer", "RewardScorer", "make_options"]
