"""``lanser serve``: the reward service (HTTP + JSON; lanser/service/).

Parses the options into a ServiceConfig, binds the socket (so ``--port 0`` can be told),
connects to Ray with ``--ray``, and runs uvicorn until SIGTERM or Ctrl-C; the pool's workers
and servers are stopped on the way out.  The service's modules (starlette, uvicorn,
prometheus-client, ray) are imported only here, when the command runs.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import click

from .. import output
from ..errors import LanserError, UnsupportedCap
from ..net import listen
from .runtime import Globals, global_command


def _write_port_file(path: str, host: str, port: int) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".port.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


@global_command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; anything else wants --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port; see --port-file).")
@click.option("--token", default=None, envvar="LANSER_SERVE_TOKEN", show_envvar=True,
              help="Bearer token every request but /healthz must carry.")
@click.option("--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run the workers as Ray actors: on a new local Ray instance bound to 127.0.0.1, or on "
                   "the cluster at ADDRESS (needs lanser[ray]).")
@click.option("--workers", type=click.IntRange(min=0), default=0,
              help="Worker processes (or actors); 0: one per core, at most --max-servers.")
@click.option("--max-servers", type=click.IntRange(min=1), default=8, show_default=True,
              help="Language servers alive at once (all bases); the least recently used idle one is "
                   "evicted to make room.")
@click.option("--memory-budget", type=click.FloatRange(min=0, min_open=True), default=None, metavar="MB",
              help="RSS of the workers and their servers; above it idle servers are evicted.")
@click.option("--queue-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Pending steps per server; past it a step is answered 429 with Retry-After.")
@click.option("--scale-queue", type=click.IntRange(min=1), default=16, show_default=True,
              help="A server with this many pending steps gets a sibling on the same base.")
@click.option("--step-timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="Seconds a step may run (then 504, not recorded, the server replaced); also each "
                   "server request's timeout unless a --timeout is given globally.")
@click.option("--session-ttl", type=click.FloatRange(min=0, min_open=True), default=1800.0, show_default=True,
              help="Seconds a session may stay idle before it is closed.")
@click.option("--max-sessions", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Steps one session may hold.")
@click.option("--max-body", type=click.IntRange(min=1), default=32 * 1024 * 1024, show_default=True,
              help="Bytes of one request body.")
@click.option("--cache-dir", default=None, metavar="DIR",
              help="Where commit bases are materialised and kept (default: a temporary directory, "
                   "removed on exit).")
@click.option("--ray-actor-cpus", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="CPUs Ray reserves for each worker actor.")
@click.option("--port-file", default=None, metavar="PATH",
              help="Write the port here once the service is ready.")
def serve(g: Globals, host: str, port: int, token: str | None, ray: str | None, workers: int,
          max_servers: int, memory_budget: float | None, queue_size: int, scale_queue: int,
          step_timeout: float, session_ttl: float, max_sessions: int, max_steps: int, max_body: int,
          cache_dir: str | None, ray_actor_cpus: float, port_file: str | None) -> int:
    """Serve process rewards over HTTP: a session per rollout, a step per edit, each
    step's record byte-identical to `lanser reward --in-memory`.  One warm server per
    base (a commit of a local git repository, or a directory) serves all its sessions.

    \b
    POST /v1/sessions {"repo": "/abs/repo", "base": "COMMIT", "options": {...}}
    POST /v1/sessions/ID/steps {"op": "patch", "patch": "..."}   -> the step's record
    GET /v1/sessions/ID, DELETE /v1/sessions/ID (final aggregate), POST /v1/score,
    GET /healthz, GET /metrics (Prometheus), GET /v1/pool

    \b
    Examples:
      lanser serve                                  # 127.0.0.1:8765, worker processes
      lanser serve --port 0 --port-file port.txt --max-servers 4 --memory-budget 8000
      lanser serve --ray                            # a local Ray instance on 127.0.0.1
      lanser serve --ray 10.0.0.5:6379 --host 0.0.0.0 --token "$TOKEN"
    """
    try:
        import uvicorn

        from ..service.app import create_app
        from ..service.config import ServiceConfig
        from ..service.pool import Pool
    except ImportError as exc:
        output.error(UnsupportedCap(f"lanser serve needs the serve extra: pip install 'lanser[serve]' ({exc})"))
        return UnsupportedCap.exit_code
    try:
        config = ServiceConfig(host=host, port=port, token=token or None, workers=workers, max_servers=max_servers,
                               memory_budget_mb=memory_budget, queue_size=queue_size, scale_queue=scale_queue,
                               step_timeout=step_timeout, session_ttl=session_ttl, max_sessions=max_sessions,
                               max_steps=max_steps, max_body=max_body, python=g.get("python"),
                               server=g.get("server", "pyright"), timeout=g.get("timeout"),
                               cache_dir=cache_dir, ray=ray, ray_actor_cpus=ray_actor_cpus)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not config.loopback and not config.token:
        output.note(f"warning: listening on {host} without --token: anyone who reaches it can run steps")
    try:
        sock = listen(host, port)
    except LanserError as exc:
        output.error(exc)
        return exc.exit_code
    bound = sock.getsockname()[1]
    make_worker: Any = None
    shutdown_ray: Any = None
    ray_info: dict[str, Any] = {}
    if ray is not None:
        try:
            from ..service import ray_backend
        except ImportError as exc:  # pragma: no cover - the extra is missing
            sock.close()
            output.error(UnsupportedCap(f"--ray needs the ray extra: pip install 'lanser[ray]' ({exc})"))
            return UnsupportedCap.exit_code
        ray_info = ray_backend.connect(None if ray == "local" else ray)

        def ray_worker(wid: str, cfg: dict[str, Any], lost: Any) -> Any:
            return ray_backend.RayWorker(wid, cfg, lost, num_cpus=ray_actor_cpus)

        async def disconnect_ray() -> None:
            ray_backend.disconnect()

        make_worker, shutdown_ray = ray_worker, disconnect_ray

    pool = Pool(config, make_worker)
    if ray is not None:
        pool.ray_address = ray_info.get("address") or (None if ray == "local" else ray)
    mode = f"Ray ({'local, 127.0.0.1' if ray == 'local' else ray})" if ray else "local worker processes"

    async def started() -> None:
        output.note(f"serve: listening on http://{host}:{bound} ({mode}, up to {config.worker_count} workers, "
                    f"{config.max_servers} servers)")
        if port_file:
            _write_port_file(port_file, host, bound)

    app = create_app(pool, token=config.token, on_startup=started, on_shutdown=shutdown_ray)
    limit = config.queue_size * config.max_servers + config.max_sessions + 256
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                           limit_concurrency=limit, timeout_keep_alive=75,
                                           timeout_graceful_shutdown=10))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if ray is not None:
            from ..service import ray_backend

            ray_backend.disconnect()
    return 0


COMMANDS = [serve]
