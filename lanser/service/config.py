"""The reward service's settings: one dataclass, a default for every field, checked once.

Every bound the service keeps is here, so memory never grows without one: sessions
(``max_sessions``), steps a session may hold (``max_steps``), pending steps per server
(``queue_size``, then HTTP 429), servers (``max_servers``, ``memory_budget_mb``), request
bodies (``max_body``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_PORT = 8765


def default_workers() -> int:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, n)


@dataclass(frozen=True)
class ServiceConfig:
    """How ``lanser serve`` runs (its command-line options; see ``lanser serve --help``)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None             # bearer token every request but /healthz must carry
    workers: int = 0                     # worker processes / Ray actors (0: one per core)
    max_servers: int = 8                 # language servers (runners) alive at once, all bases together
    memory_budget_mb: float | None = None  # RSS of workers + servers; over it, idle servers are evicted
    queue_size: int = 64                 # pending steps (running + waiting) per server; then 429
    scale_queue: int = 16                # a base whose server has this many pending steps gets another
    step_timeout: float = 120.0          # seconds a step may run on its worker
    session_ttl: float = 1800.0          # seconds a session may stay idle before it is closed
    max_sessions: int = 4096
    max_steps: int = 10000               # steps one session may hold
    max_body: int = 32 * 1024 * 1024     # bytes of one request body
    start_timeout: float = 600.0         # seconds a server may take to start and check its base
    python: str | None = None            # interpreter whose environment the servers resolve imports in
    server: str = "pyright"
    timeout: float | None = None         # per LSP request, as the CLI's --timeout (None: step_timeout)
    cache_dir: str | None = None         # where git bases are materialised (default: a temp dir)
    ray: str | None = None               # None: local worker processes; "local" or an address: Ray
    ray_actor_cpus: float = 1.0
    stats_interval: float = 1.0          # seconds between two looks at the workers (RSS, dead servers)

    def __post_init__(self) -> None:
        positive = ("max_servers", "queue_size", "scale_queue", "max_sessions", "max_steps", "max_body")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("step_timeout", "session_ttl", "start_timeout", "timeout", "stats_interval"):
            if getattr(self, name) is not None and not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.memory_budget_mb is not None and not self.memory_budget_mb > 0:
            raise ValueError("memory_budget_mb must be > 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be in 0..65535")

    @property
    def worker_count(self) -> int:
        return self.workers or min(default_workers(), self.max_servers)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


__all__ = ["DEFAULT_PORT", "ServiceConfig", "default_workers"]
