"""Where the adapters get their rewards: one small protocol, two implementations.

    RewardBackend (async)           open() -> session id
                                    step(session, step) -> reward record (CONTRACT.md section 5)
                                    records(session) -> every record of the session
                                    close(session, "sum"|"min") -> {"return", "records", ...}
                                    score(steps) -> records of a whole trajectory

- :class:`InProcessBackend` keeps one :class:`~lanser.rewards.sessions.SharedRunner`
  (one warm server for one base, sessions as in-memory overlays; nothing is
  ever written to the base).  Its records are byte-identical to ``lanser reward
  --in-memory`` on the same steps.  It also hands back each step's bundle, so a
  query step's answer (``facts``) reaches the agent.
- :class:`HttpBackend` uses the reward service (``lanser serve``) through its one
  client, :mod:`lanser.service.client`.  The service returns records, not
  bundles: a query step's observation then carries the record only.

Frameworks call from synchronous code (SkyRL's ``env.step``, TRL's tools) and
from their own event loops (verl, OpenRLHF).  :class:`RewardClient` runs a
backend on a private event-loop thread and offers both: ``client.step(...)``
blocks, ``await client.astep(...)`` works from any loop.  :func:`shared_client`
returns one client per (repository, options), so every environment instance
of a GRPO group shares one warm server.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
Record = dict[str, Any]


@runtime_checkable
class RewardBackend(Protocol):
    """What an adapter needs from a reward source (all coroutines)."""

    async def start(self) -> None: ...

    async def open(self) -> str: ...

    async def step(self, session: str, step: Mapping[str, Any]) -> Record: ...

    async def records(self, session: str) -> list[Record]: ...

    async def close(self, session: str, mode: str = "sum") -> dict[str, Any]: ...

    async def score(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]: ...

    async def shutdown(self) -> None: ...


@dataclass
class StepAnswer:
    """A step's record, plus its bundle when the backend has one (in-process)."""

    record: Record
    bundle: dict[str, Any] | None = None


class InProcessBackend:
    """A :class:`~lanser.rewards.sessions.SharedRunner` on ``workspace`` (see the module docstring).

    ``options`` are :func:`lanser.rewards.api.make_options` keywords (``diag_term``,
    ``clip``, ``severities``, ``weights``, ...); ``engine`` are
    :class:`lanser.engine.Options` fields (``python``, ``timeout``, ``allow``, ``deny``).
    """

    def __init__(self, workspace: str, *, options: Mapping[str, Any] | None = None,
                 engine: Mapping[str, Any] | None = None) -> None:
        from ..engine import Options
        from ..rewards.api import make_options
        from ..rewards.sessions import SharedRunner

        opts = make_options(**{**dict(options or {}), "in_memory": True})
        self.workspace = str(workspace)
        self.shared = SharedRunner(self.workspace, opts,
                                   engine_options=Options(workspace=self.workspace, **dict(engine or {})))
        self._bundle: dict[str, Any] | None = None
        self.shared.runner.on_bundle = self._keep_bundle

    def _keep_bundle(self, bundle: dict[str, Any]) -> None:
        self._bundle = bundle

    @property
    def weights(self) -> dict[str, float]:
        return self.shared.options.weights.to_json()

    async def start(self) -> None:
        await self.shared.start()

    async def open(self) -> str:
        await self.shared.start()
        return self.shared.open()

    async def step(self, session: str, step: Mapping[str, Any]) -> Record:
        return (await self.step_with_bundle(session, step)).record

    async def step_with_bundle(self, session: str, step: Mapping[str, Any]) -> StepAnswer:
        """The record and the step's bundle.  Sound under concurrency: the shared runner
        runs one step at a time under its lock, and nothing awaits between the step's
        end and the read of the bundle it produced."""
        self._bundle = None
        record = await self.shared.step(session, step)
        bundle, self._bundle = self._bundle, None
        return StepAnswer(record, bundle)

    async def records(self, session: str) -> list[Record]:
        return list(self.shared.get(session).records)

    async def close(self, session: str, mode: str = "sum") -> dict[str, Any]:
        return self.shared.close(session, mode)

    async def score(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]:
        await self.shared.start()
        return await self.shared.score(list(steps))

    async def shutdown(self) -> None:
        await self.shared.aclose()


class HttpBackend:
    """The reward service (``lanser serve``) as a backend: a thin async face on
    :class:`lanser.service.client.AsyncRewardServiceClient`, the one HTTP client of the
    service (keep-alive, 429 retried after ``Retry-After`` for up to ``retry_busy`` seconds,
    errors as :class:`~lanser.service.client.ServiceError` with the contract's code).

    ``repo``/``base``/``options`` are sent when a session opens: ``base`` is a commit of
    ``repo``, or (``repo`` alone) ``repo`` is a directory used as it is.  ``options`` are the
    service's option keys (``clip``, ``diagTerm``, ``weights``, ...).
    """

    def __init__(self, url: str, *, repo: str, base: str | None = None,
                 options: Mapping[str, Any] | None = None, token: str | None = None,
                 timeout: float = 600.0, retry_busy: float = 120.0) -> None:
        from ..service.client import AsyncRewardServiceClient

        self.client = AsyncRewardServiceClient(url, token=token, timeout=timeout, retry_busy=retry_busy)
        self.repo = repo
        self.base = base
        self.options = dict(options or {})

    def _where(self) -> tuple[str, str | None]:
        """(base, repo) as the service takes them."""
        return (self.base, self.repo) if self.base is not None else (self.repo, None)

    async def start(self) -> None:
        return None

    async def open(self) -> str:
        base, repo = self._where()
        return await self.client.open_session(base, repo, self.options)

    async def step(self, session: str, step: Mapping[str, Any]) -> Record:
        return await self.client.step(session, dict(step))

    async def step_with_bundle(self, session: str, step: Mapping[str, Any]) -> StepAnswer:
        return StepAnswer(await self.step(session, step))

    async def records(self, session: str) -> list[Record]:
        return await self.client.records(session)

    async def close(self, session: str, mode: str = "sum") -> dict[str, Any]:
        """The service closes with the session's own aggregate; ``mode`` is applied here to
        the records it returns (the same :func:`~lanser.rewards.records.aggregate`)."""
        from ..rewards.records import aggregate

        answer = await self.client.close(session)
        records = list(answer.get("records") or [])
        final = aggregate(records, mode) if records else []
        return {**answer, "aggregate": mode, "steps": len(final),
                "return": final[0]["return"] if final else 0.0, "records": final}

    async def score(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]:
        base, repo = self._where()
        answer = await self.client.score([dict(s) for s in steps], base, repo, self.options)
        return list(answer.get("records") or [])

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.client.sync.close_connections)


class RewardClient:
    """A backend on a private event-loop thread: blocking and awaitable calls alike."""

    def __init__(self, backend: RewardBackend) -> None:
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lanser-rewards", daemon=True)
        self._thread.start()
        self._closed = False

    def _submit(self, factory: Callable[[], Awaitable[T]]) -> "Future[T]":
        if self._closed:
            raise RuntimeError("the reward client is closed")

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    def call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run ``factory()`` on the client's loop and wait for it (from synchronous code)."""
        return self._submit(factory).result()

    async def acall(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run ``factory()`` on the client's loop and await it from any other loop."""
        return await asyncio.wrap_future(self._submit(factory))

    # blocking
    def start(self) -> None:
        self.call(self.backend.start)

    def open(self) -> str:
        return self.call(self.backend.open)

    def step(self, session: str, step: Mapping[str, Any]) -> StepAnswer:
        return self.call(lambda: _step_with_bundle(self.backend, session, step))

    def records(self, session: str) -> list[Record]:
        return self.call(lambda: self.backend.records(session))

    def close_session(self, session: str, mode: str = "sum") -> dict[str, Any]:
        return self.call(lambda: self.backend.close(session, mode))

    def score(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]:
        items = list(steps)
        return self.call(lambda: self.backend.score(items))

    # awaitable
    async def aopen(self) -> str:
        return await self.acall(self.backend.open)

    async def astep(self, session: str, step: Mapping[str, Any]) -> StepAnswer:
        return await self.acall(lambda: _step_with_bundle(self.backend, session, step))

    async def aclose_session(self, session: str, mode: str = "sum") -> dict[str, Any]:
        return await self.acall(lambda: self.backend.close(session, mode))

    async def ascore(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]:
        items = list(steps)
        return await self.acall(lambda: self.backend.score(items))

    def shutdown(self) -> None:
        """Stop the backend (its server) and the loop thread."""
        if self._closed:
            return
        try:
            self.call(self.backend.shutdown)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()


async def _step_with_bundle(backend: RewardBackend, session: str, step: Mapping[str, Any]) -> StepAnswer:
    fn = getattr(backend, "step_with_bundle", None)
    if fn is not None:
        return await fn(session, step)
    return StepAnswer(await backend.step(session, step))


_SHARED: dict[str, RewardClient] = {}
_SHARED_LOCK = threading.Lock()


def backend_key(repo: str, *, url: str | None = None, base: str | None = None,
                options: Mapping[str, Any] | None = None, engine: Mapping[str, Any] | None = None) -> str:
    return json.dumps({"repo": str(repo), "url": url, "base": base, "options": dict(options or {}),
                       "engine": dict(engine or {})}, sort_keys=True, default=str)


def shared_client(repo: str, *, url: str | None = None, base: str | None = None,
                  options: Mapping[str, Any] | None = None, engine: Mapping[str, Any] | None = None,
                  token: str | None = None) -> RewardClient:
    """One client per (repo, service url, base, options): the HTTP service when ``url`` is
    given, else an in-process shared runner on ``repo`` (a directory)."""
    key = backend_key(repo, url=url, base=base, options=options, engine=engine)
    with _SHARED_LOCK:
        client = _SHARED.get(key)
        if client is None or client._closed:
            backend: RewardBackend
            if url:
                backend = HttpBackend(url, repo=repo, base=base, options=options, token=token)
            else:
                if base is not None:
                    raise ValueError("an in-process backend scores a directory as it is: give base only "
                                     "with a service url (or materialise the commit first)")
                backend = InProcessBackend(repo, options=options, engine=engine)
            client = RewardClient(backend)
            _SHARED[key] = client
        return client


def shutdown_shared() -> None:
    """Stop every shared client (their servers); also run at interpreter exit."""
    with _SHARED_LOCK:
        clients = list(_SHARED.values())
        _SHARED.clear()
    for c in clients:
        try:
            c.shutdown()
        except Exception:  # noqa: BLE001 - best effort: one failing client must not keep the others up
            pass


atexit.register(shutdown_shared)


__all__ = ["HttpBackend", "InProcessBackend", "RewardBackend", "RewardClient", "StepAnswer",
           "backend_key", "shared_client", "shutdown_shared"]
