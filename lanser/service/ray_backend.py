"""Workers as Ray actors (``lanser serve --ray [ADDRESS]``; needs the ``ray`` extra).

Each actor holds a :class:`~lanser.service.worker.WorkerCore`, exactly what a worker process
holds, and the router calls ``dispatch`` on it.  An actor that dies (its process killed, its
node lost) makes the calls fail with ``RayActorError``: the router takes that as a lost worker
and rebuilds its sessions elsewhere by replay.

``connect(None)`` starts a local Ray instance bound to loopback: Ray listens on every
interface by default, so ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before it starts
(Ray then takes 127.0.0.1 as the node's address, and every listener binds there) and the node
address is given as 127.0.0.1.  ``connect(ADDRESS)`` joins an existing cluster as a driver;
the actors then run wherever the cluster places them (a cluster with Ray's token
authentication wants ``RAY_AUTH_MODE=token`` and its token in ``lanser serve``'s environment,
as any Ray driver does), so the repositories and directories
named as bases must exist at the same paths on every node (a shared file system, or the
same checkout everywhere), and lanser must be installed in the nodes' Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import Any, Callable

from .transport import WorkerHandle, WorkerLost

_ACTOR: Any = None
_TEMP: list[str] = []  # the session directory of a Ray instance we started (removed on disconnect)


def connect(address: str | None, *, num_cpus: int | None = None) -> dict[str, Any]:
    """``ray.init``: a new local instance on loopback (``address`` None) or an existing cluster."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None or address.startswith(("127.", "localhost")):
        # a cluster on this machine only: every listener on loopback (read when ray is
        # imported, so set before)
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    if ray.is_initialized():
        return {"address": None, "local": address is None}
    if address is None:
        temp = tempfile.mkdtemp(prefix="lanser-ray-")
        _TEMP.append(temp)
        ctx = ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                       configure_logging=False, namespace="lanser", _node_ip_address="127.0.0.1",
                       _temp_dir=temp)
    else:
        ctx = ray.init(address=address, log_to_driver=False, configure_logging=False, namespace="lanser")
    return {"address": getattr(ctx, "address_info", {}).get("gcs_address"), "local": address is None}


def disconnect() -> None:
    with contextlib.suppress(Exception):
        import ray

        if ray.is_initialized():
            ray.shutdown()
    while _TEMP:
        shutil.rmtree(_TEMP.pop(), ignore_errors=True)


class LanserWorkerActor:
    """A WorkerCore in an actor (async: calls for different runners overlap).  Module level,
    so Ray ships it by reference: the nodes import it from their own lanser."""

    def __init__(self, config: dict[str, Any]) -> None:
        from lanser.service.worker import WorkerCore

        self.core = WorkerCore(cache_dir=config["cacheDir"], python=config.get("python"),
                               server=config.get("server", "pyright"), timeout=float(config.get("timeout", 30.0)))

    async def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self.core.dispatch(method, params)


def _actor_class() -> Any:
    global _ACTOR
    if _ACTOR is None:
        import ray

        _ACTOR = ray.remote(LanserWorkerActor)
    return _ACTOR


class RayWorker(WorkerHandle):
    """One actor; the pool's handle on it."""

    kind = "ray"

    def __init__(self, wid: str, config: dict[str, Any], on_lost: Callable[[WorkerHandle], Any], *,
                 num_cpus: float = 1.0) -> None:
        self.id = wid
        self.config = config
        self.on_lost = on_lost
        self.num_cpus = num_cpus
        self.actor: Any = None
        self._lost_told = False

    async def start(self) -> None:
        cls = _actor_class()
        self.actor = cls.options(num_cpus=self.num_cpus, max_concurrency=1000,
                                 scheduling_strategy="SPREAD").remote(self.config)
        self.alive = True
        env = await self.call("ping", {}, timeout=300)
        self.pid = (env.get("result") or {}).get("pid")

    def _lost(self) -> None:
        self.alive = False
        if not self._lost_told:
            self._lost_told = True
            self.on_lost(self)

    async def call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError

        if not self.alive:
            raise WorkerLost(f"actor {self.id} is gone")
        ref = self.actor.dispatch.remote(method, params)
        try:
            result: dict[str, Any] = await asyncio.wait_for(_await(ref), timeout)
            return result
        except asyncio.TimeoutError:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            raise
        except (RayActorError, ActorUnavailableError) as exc:
            self._lost()
            raise WorkerLost(f"actor {self.id} (pid {self.pid}) is gone: {type(exc).__name__}") from None

    async def stop(self) -> None:
        if self.actor is None:
            return
        with contextlib.suppress(Exception):
            await self.call("shutdown", {}, timeout=30)
        self.kill()

    def kill(self) -> None:
        import ray

        self.alive = False
        if self.actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(self.actor, no_restart=True)


async def _await(ref: Any) -> Any:
    return await ref


__all__ = ["RayWorker", "connect", "disconnect"]
