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
- :class:`HttpBackend` speaks the reward service's API (``lanser serve``,
  issue 14): ``POST /v1/sessions {repo, base, options}``, ``POST
  /v1/sessions/{id}/steps``, ``GET /v1/sessions/{id}``, ``DELETE
  /v1/sessions/{id}``, ``POST /v1/score``, with the standard library only.
  A 429 is retried after its ``Retry-After`` (bounded).  The service returns
  records, not bundles: a query step's observation then carries the record only.

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
import time
import urllib.error
import urllib.request
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


class ServiceError(RuntimeError):
    """The reward service answered with an error (status and body kept)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"reward service answered HTTP {status}: {body}")
        self.status = status
        self.body = body


class HttpBackend:
    """The reward service over HTTP (see the module docstring).

    ``repo``/``base``/``options`` are sent when a session opens (``base``: a
    commit of ``repo``, or a directory).  ``token``: sent as ``Authorization:
    Bearer``.  Response shapes accepted: a session id under ``id`` or
    ``session``; records as a list or under ``records``.
    """

    def __init__(self, url: str, *, repo: str, base: str | None = None,
                 options: Mapping[str, Any] | None = None, token: str | None = None,
                 timeout: float = 120.0, retries_429: int = 20) -> None:
        self.url = url.rstrip("/")
        self.repo = repo
        self.base = base
        self.options = dict(options or {})
        self.token = token
        self.timeout = timeout
        self.retries_429 = retries_429

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.retries_429 + 1):
            req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = raw.decode("utf-8", errors="replace")
                if exc.code == 429 and attempt < self.retries_429:
                    time.sleep(_retry_after(exc.headers.get("Retry-After")))
                    continue
                raise ServiceError(exc.code, payload) from None
        raise AssertionError("unreachable")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._request, method, path, body)

    def _session_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"repo": self.repo, "options": self.options}
        if self.base is not None:
            body["base"] = self.base
        return body

    async def start(self) -> None:
        return None

    async def open(self) -> str:
        answer = await self._call("POST", "/v1/sessions", self._session_body())
        sid = answer.get("id", answer.get("session")) if isinstance(answer, dict) else answer
        if not isinstance(sid, str):
            raise ServiceError(200, answer)
        return sid

    async def step(self, session: str, step: Mapping[str, Any]) -> Record:
        record = await self._call("POST", f"/v1/sessions/{_quote(session)}/steps", dict(step))
        if isinstance(record, dict) and "record" in record and "processReward" not in record:
            record = record["record"]
        return record

    async def step_with_bundle(self, session: str, step: Mapping[str, Any]) -> StepAnswer:
        return StepAnswer(await self.step(session, step))

    async def records(self, session: str) -> list[Record]:
        return _records(await self._call("GET", f"/v1/sessions/{_quote(session)}"))

    async def close(self, session: str, mode: str = "sum") -> dict[str, Any]:
        answer = await self._call("DELETE", f"/v1/sessions/{_quote(session)}?aggregate={_quote(mode)}")
        return answer if isinstance(answer, dict) else {"return": answer}

    async def score(self, steps: Iterable[Mapping[str, Any]]) -> list[Record]:
        body = {**self._session_body(), "steps": [dict(s) for s in steps]}
        return _records(await self._call("POST", "/v1/score", body))

    async def shutdown(self) -> None:
        return None


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1.0), 0.05), 30.0)
    except ValueError:
        return 1.0


def _records(answer: Any) -> list[Record]:
    if isinstance(answer, dict):
        answer = answer.get("records", [])
    return list(answer or [])


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


__all__ = ["HttpBackend", "InProcessBackend", "RewardBackend", "RewardClient", "ServiceError", "StepAnswer",
           "backend_key", "shared_client", "shutdown_shared"]
