"""The reward service (``lanser serve``): many rollouts' steps scored over HTTP on warm servers.

    router (HTTP, pool.py) ──> workers (worker.py: processes, or Ray actors) ──> SharedRunners ──> pyright

* :mod:`.config`   the service's settings (a dataclass with a default for every field);
* :mod:`.requests` what a request may carry: the base, the scoring options, a step (pure, no I/O
  beyond ``git rev-parse``), each refused with the contract's E/BAD_INPUT / E/NOT_FOUND;
* :mod:`.bases`    a base materialised once per (repository, commit) with ``git archive``, read-only;
* :mod:`.worker`   the SharedRunners of one worker, driven by the router (a process's main loop,
  or the body of a Ray actor);
* :mod:`.transport` the router's handle on a worker: a child process speaking JSON lines, or a
  Ray actor;
* :mod:`.pool`     routing, bounded queues, scale-out, LRU eviction, idle expiry, recovery by replay;
* :mod:`.app`      the Starlette application (routes, bearer token, errors as JSON, /metrics);
* :mod:`.client`   :class:`RewardServiceClient`, the trainer's side (standard library only).

Only :mod:`.client` is imported by ``import lanser.service``: the server side needs the
``serve`` extra (starlette, uvicorn, prometheus-client).
"""

from __future__ import annotations

from .client import RewardServiceClient, ServiceError

__all__ = ["RewardServiceClient", "ServiceError"]
