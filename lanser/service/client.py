"""The trainer's side of the reward service: a small HTTP client (standard library only).

    from lanser.sdk import RewardServiceClient

    rs = RewardServiceClient("http://127.0.0.1:8765", token=None, retry_busy=60)
    sid = rs.open_session(base="4f1c2e0", repo="/data/repos/astropy")     # one per rollout
    rec = rs.step(sid, {"op": "patch", "patch": diff})                    # one per edit
    r_t = rec["processReward"]["r"]
    final = rs.close(sid)                                                 # {"return", "records", ...}

Thread-safe: each thread keeps its own keep-alive connection, so a thread pool of rollouts
shares one client.  ``retry_busy``: for how many seconds a 429 is retried (sleeping what
``Retry-After`` says) before :class:`ServiceError` is raised; 0 raises at once.  A request is
sent again only when a reused keep-alive connection turns out closed before any answer (the
service never saw it), so a step is never applied twice.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.parse
from typing import Any, Mapping

from ..errors import LanserError


class ServiceError(LanserError):
    """An error answer of the service: the contract's code, the HTTP status, Retry-After."""

    def __init__(self, status: int, error: Mapping[str, Any], retry_after: float | None = None) -> None:
        super().__init__(str(error.get("message", f"HTTP {status}")), details=dict(error.get("details") or {}))
        self.status = status
        self.code = str(error.get("code", "E/INTERNAL"))
        self.exit_code = int(error.get("exitCode", 1))
        self.retryable = error.get("retryable", False)
        self.retry_after = retry_after


class RewardServiceClient:
    """``lanser serve``'s API as methods (see the module docstring)."""

    def __init__(self, url: str = "http://127.0.0.1:8765", *, token: str | None = None, timeout: float = 600.0,
                 retry_busy: float = 0.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "") or not parts.hostname:
            raise ValueError(f"an http:// URL is needed, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_busy = retry_busy
        self._local = threading.local()

    # -- the API ---------------------------------------------------------------------------
    def open_session(self, base: str, repo: str | None = None, options: Mapping[str, Any] | None = None) -> str:
        """A session at ``base`` (a directory, or a commit of ``repo``); its id."""
        body: dict[str, Any] = {"base": base}
        if repo is not None:
            body["repo"] = repo
        if options:
            body["options"] = dict(options)
        return str(self.request("POST", "/v1/sessions", body)["session"])

    def step(self, session: str, step: Mapping[str, Any]) -> dict[str, Any]:
        """Run one step; its reward record."""
        return json.loads(self.step_bytes(session, step))

    def step_bytes(self, session: str, step: Mapping[str, Any]) -> bytes:
        """The record exactly as the service sent it (the CLI's line, canonical JSON)."""
        return self.request_bytes("POST", f"/v1/sessions/{urllib.parse.quote(session, safe='')}/steps", step)

    def records(self, session: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/v1/sessions/{urllib.parse.quote(session, safe='')}")["records"])

    def close(self, session: str) -> dict[str, Any]:
        """Free the session; its final aggregate (``return``, ``records`` with ``value``)."""
        return self.request("DELETE", f"/v1/sessions/{urllib.parse.quote(session, safe='')}")

    def score(self, steps: list[Mapping[str, Any]], base: str, repo: str | None = None,
              options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A whole trajectory in one call: ``{"records", "return", "steps", "aggregate"}``."""
        body: dict[str, Any] = {"base": base, "steps": [dict(s) for s in steps]}
        if repo is not None:
            body["repo"] = repo
        if options:
            body["options"] = dict(options)
        return self.request("POST", "/v1/score", body)

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/healthz")

    def pool(self) -> dict[str, Any]:
        return self.request("GET", "/v1/pool")

    def metrics(self) -> str:
        return self.request_bytes("GET", "/metrics").decode("utf-8")

    # -- HTTP --------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.request_bytes(method, path, body))

    def request_bytes(self, method: str, path: str, body: Any = None) -> bytes:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        deadline = time.monotonic() + self.retry_busy
        while True:
            status, headers, payload = self._send(method, self.prefix + path, data)
            if status < 400:
                return payload
            try:
                error = json.loads(payload).get("error") or {}
            except (ValueError, AttributeError):
                error = {"code": "E/INTERNAL", "message": payload.decode("utf-8", "replace")[:500] or f"HTTP {status}"}
            retry_after = _float(headers.get("retry-after"))
            if status == 429 and time.monotonic() + (retry_after or 1.0) <= deadline:
                time.sleep(retry_after or 1.0)
                continue
            raise ServiceError(status, error, retry_after)

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.used = False
        return conn

    def _send(self, method: str, path: str, data: bytes | None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for _ in range(2):
            conn = self._connection()
            reused = bool(getattr(self._local, "used", False))
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if reused:  # the service closed an idle keep-alive connection: it never saw this
                    continue
                raise ConnectionError(f"the reward service closed the connection: {exc}") from None
            except (OSError, http.client.HTTPException):
                self._drop()
                raise
            self._local.used = True
            if resp.getheader("connection", "").lower() == "close":
                self._drop()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
        raise ConnectionError(f"cannot reach the reward service at {self.host}:{self.port}")

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close_connections(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._drop()


class AsyncRewardServiceClient:
    """The same API for asyncio code: each call runs the blocking client in a thread."""

    def __init__(self, url: str = "http://127.0.0.1:8765", **kwargs: Any) -> None:
        self.sync = RewardServiceClient(url, **kwargs)

    async def open_session(self, base: str, repo: str | None = None, options: Mapping[str, Any] | None = None) -> str:
        return await asyncio.to_thread(self.sync.open_session, base, repo, options)

    async def step(self, session: str, step: Mapping[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.step, session, step)

    async def records(self, session: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.records, session)

    async def close(self, session: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.close, session)

    async def score(self, steps: list[Mapping[str, Any]], base: str, repo: str | None = None,
                    options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.score, steps, base, repo, options)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


__all__ = ["AsyncRewardServiceClient", "RewardServiceClient", "ServiceError"]
