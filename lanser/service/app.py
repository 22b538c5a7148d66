"""The HTTP face of the reward service: Starlette routes over a :class:`~lanser.service.pool.Pool`.

    POST   /v1/sessions              {repo?, base, options?}      -> {"session": id, ...}
    POST   /v1/sessions/{id}/steps   a step, as lanser reward reads them -> that step's record
    GET    /v1/sessions/{id}                                       -> {"records": [...], ...}
    DELETE /v1/sessions/{id}                                       -> the final aggregate; frees it
    POST   /v1/score                 {repo?, base, options?, steps} -> every record at once
    POST   /get_reward               OpenRLHF's remote reward model: {query, prompts, labels}
                                     -> {"rewards", "scores", "extra_logs"} (each query's actions
                                     scored as one trajectory, summed; a label names the repo)
    GET    /v1/pool                  workers, servers (with pids), bases, counters
    GET    /healthz                  {"status": "ok", ...} (no token needed)
    GET    /metrics                  Prometheus text format

Every body is JSON; every answer is canonical JSON (RFC 8785, as the CLI prints).  A step's
record is returned as the exact bytes ``lanser reward --in-memory`` prints for it (without the
newline).  Errors are ``{"error": {code, exitCode, message, retryable, details?}}`` with the
contract's codes and an HTTP status that says the same:

    400 E/BAD_INPUT          malformed body, unknown field or option, invalid step (not taken)
    401 E/FS_PERMISSIONS     missing or wrong bearer token (details.reason "unauthorized")
    404 E/NOT_FOUND          no such session (details.reason "expired" after --session-ttl),
                             repository, directory or commit
    413 E/BAD_INPUT          body larger than --max-body
    429 E/REQUEST_CANCELLED  queue full, too many sessions, no server free (Retry-After header)
    500 E/REPLAY_MISMATCH    a recovered session replayed differently (it cannot go on)
    503 E/LS_CRASH           a server or worker failed three times under one step
    504 E/LS_TIMEOUT         the step ran past --step-timeout (not recorded)
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Any, AsyncIterator, Awaitable, Callable

import orjson
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..bundles.canonical import canonical_bytes
from ..errors import BadInput, FsPermissions, InternalError, LanserError, NotFound
from ..integrations.openrlhf import BadPayload, make_get_reward
from .pool import Busy, Pool

STATUS: dict[str, int] = {
    "E/BAD_INPUT": 400, "E/BAD_SELECTOR_SYNTAX": 400, "E/NOT_FOUND": 404, "E/FS_PERMISSIONS": 403,
    "E/REQUEST_CANCELLED": 429, "E/LS_TIMEOUT": 504, "E/LS_CRASH": 503, "E/REPLAY_MISMATCH": 500,
    "E/UNSUPPORTED_CAP": 501, "E/INTERNAL": 500,
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


Handler = Callable[[Request], Awaitable[Response]]


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = obj if isinstance(obj, bytes) else canonical_bytes(obj)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: LanserError, status: int | None = None) -> Response:
    headers = {}
    if isinstance(exc, Busy):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response({"error": exc.to_json()}, status or STATUS.get(exc.code, 500), headers)


class _PoolCollector:
    """Prometheus families read from the pool at scrape time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def collect(self) -> Any:
        pool = self.pool
        yield GaugeMetricFamily("lanser_sessions", "Open sessions.", value=len(pool.sessions))
        queue = GaugeMetricFamily("lanser_queue_depth", "Pending steps (running and waiting) per base.",
                                  labels=["base"])
        servers = GaugeMetricFamily("lanser_servers", "Language servers (runners) alive per base.", labels=["base"])
        for base in pool.bases.values():
            live = [r for r in base.runners if r.state != "dead"]
            queue.add_metric([base.spec.label], sum(r.pending for r in live))
            servers.add_metric([base.spec.label], len(live))
        yield queue
        yield servers
        yield GaugeMetricFamily("lanser_pending_steps", "Pending steps, all bases.", value=pool.total_pending)
        yield GaugeMetricFamily("lanser_workers", "Worker processes or Ray actors alive.",
                                value=sum(1 for w in pool.workers if w.alive))
        yield GaugeMetricFamily("lanser_steps_per_second", "Steps answered per second over the last 10 s.",
                                value=pool.steps_per_second())
        rss = GaugeMetricFamily("lanser_rss_bytes", "Resident memory: the router, the workers, the servers.",
                                labels=["process"])
        for name, value in pool.rss().items():
            rss.add_metric([name], value)
        yield rss
        for key, help_text in (("steps", "Steps answered."), ("server_starts", "Language servers started."),
                               ("recoveries", "Sessions rebuilt by replay on a new server."),
                               ("replayed_steps", "Steps replayed to rebuild sessions."),
                               ("expired_sessions", "Sessions closed after --session-ttl idle."),
                               ("worker_losses", "Workers (processes, actors) lost."),
                               ("server_deaths", "Servers found dead between steps."),
                               ("step_timeouts", "Steps stopped by --step-timeout."),
                               ("replay_mismatches", "Recovered sessions whose replay differed.")):
            yield CounterMetricFamily(f"lanser_{key}", help_text, value=pool.counters.get(key, 0))
        rejected = CounterMetricFamily("lanser_rejected", "Requests refused with 429, by reason.", labels=["reason"])
        for reason in ("queue", "sessions", "servers"):
            rejected.add_metric([reason], pool.rejected.get(reason, 0))
        yield rejected
        evicted = CounterMetricFamily("lanser_evictions", "Servers stopped to make room, by reason.",
                                      labels=["reason"])
        for reason in ("max-servers", "memory-budget"):
            evicted.add_metric([reason], pool.evictions.get(reason, 0))
        yield evicted


def create_app(pool: Pool, *, token: str | None = None, max_body: int | None = None,
               on_startup: Callable[[], Awaitable[Any]] | None = None,
               on_shutdown: Callable[[], Awaitable[Any]] | None = None) -> Starlette:
    """The application; the pool is started and closed with it (lifespan)."""
    limit = max_body or pool.config.max_body
    disable_created_metrics()  # no *_created series: the exposition says what it counts, nothing else
    registry = CollectorRegistry(auto_describe=True)
    latency = Histogram("lanser_step_latency_seconds", "Step latency seen by the client (queue included).",
                        buckets=LATENCY_BUCKETS, registry=registry)
    registry.register(_PoolCollector(pool))  # type: ignore[arg-type]
    pool.on_step = latency.observe

    def authorized(request: Request) -> bool:
        if not token:
            return True
        got = request.headers.get("authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {token}".encode())

    async def read_json(request: Request) -> Any:
        size = request.headers.get("content-length")
        if size is not None:
            if not size.isdigit():
                raise BadInput("bad Content-Length")
            if int(size) > limit:
                raise _TooLarge(f"the body is larger than {limit} bytes (--max-body)")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise _TooLarge(f"the body is larger than {limit} bytes (--max-body)")
        if not data.strip():
            raise BadInput("the request needs a JSON body")
        try:
            return orjson.loads(bytes(data))
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"the body is not JSON: {exc}") from None

    def route(fn: Handler, *, public: bool = False) -> Handler:
        async def handler(request: Request) -> Response:
            if not public and not authorized(request):
                return error_response(FsPermissions("a bearer token is required (Authorization: Bearer TOKEN)",
                                                    details={"reason": "unauthorized"}), 401)
            try:
                return await fn(request)
            except _TooLarge as exc:
                return error_response(exc, 413)
            except LanserError as exc:
                return error_response(exc)
            except Exception as exc:  # no traceback reaches a client
                return error_response(InternalError(f"internal error: {type(exc).__name__}: {exc}"))
        return handler

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok", "sessions": len(pool.sessions), "servers": len(pool.runners),
                              "workers": sum(1 for w in pool.workers if w.alive)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def pool_status(request: Request) -> Response:
        return json_response(pool.status())

    async def open_session(request: Request) -> Response:
        return json_response(await pool.open_session(await read_json(request)), 201)

    async def get_session(request: Request) -> Response:
        return json_response(pool.records_body(request.path_params["sid"]))

    async def delete_session(request: Request) -> Response:
        return json_response(await pool.close_session(request.path_params["sid"]))

    async def step(request: Request) -> Response:
        sid = request.path_params["sid"]
        pool.session(sid)  # 404 before reading the body
        record = await pool.step(sid, await read_json(request))
        return json_response(record.encode())

    async def score(request: Request) -> Response:
        return json_response(await pool.score(await read_json(request)))

    async def score_on_pool(target: dict[str, Any], steps: list[Any]) -> list[dict[str, Any]]:
        where = {"repo": target["repo"], "base": target["base"]} if target.get("base") else {"base": target["repo"]}
        answer = await pool.score({**where, "steps": steps}, lenient=True)
        return list(answer["records"])

    reward_model = make_get_reward(scorer=score_on_pool)

    async def get_reward(request: Request) -> Response:
        try:
            return json_response(await reward_model(await read_json(request)))
        except BadPayload as exc:
            raise BadInput(str(exc)) from None

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return error_response(BadInput(f"{request.method} is not allowed on {request.url.path}",
                                           details={"reason": "method"}), 405)
        return error_response(NotFound(f"no route {request.method} {request.url.path}"), 404)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.start()
        if on_startup is not None:
            await on_startup()
        try:
            yield
        finally:
            await pool.close()
            if on_shutdown is not None:
                await on_shutdown()

    routes = [
        Route("/healthz", route(healthz, public=True), methods=["GET"]),
        Route("/metrics", route(metrics), methods=["GET"]),
        Route("/v1/pool", route(pool_status), methods=["GET"]),
        Route("/v1/sessions", route(open_session), methods=["POST"]),
        Route("/v1/sessions/{sid}", route(get_session), methods=["GET"]),
        Route("/v1/sessions/{sid}", route(delete_session), methods=["DELETE"]),
        Route("/v1/sessions/{sid}/steps", route(step), methods=["POST"]),
        Route("/v1/score", route(score), methods=["POST"]),
        Route("/get_reward", route(get_reward), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: not_found})  # type: ignore[dict-item]


class _TooLarge(BadInput):
    """A body past --max-body: E/BAD_INPUT, HTTP 413."""


__all__ = ["STATUS", "create_app", "error_response", "json_response"]
