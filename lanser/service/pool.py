"""The router: sessions, runners and workers, and every rule about who runs what.

**Runners.**  A runner is one warm language server on one base (a SharedRunner, living in a
worker).  A base's sessions share its runner; the router runs one step at a time per runner
(``slot.lock``, FIFO), so a runner's *queue* is its pending steps: the one running and those
waiting.  When a runner's queue reaches ``scale_queue`` another runner is started for the base
(while fewer than ``max_servers`` run), and NEW sessions are pinned to the least loaded runner
of their base (fewest sessions, then fewest pending steps).  A session never moves to another
runner, except when its runner is gone (recovery, eviction).

**Bounds.**  A step whose runner already has ``queue_size`` pending steps, or that would take
the whole service past ``queue_size * max_servers``, is refused at once: HTTP 429 with
``Retry-After`` (E/REQUEST_CANCELLED, ``details.reason: "busy"``), never queued without bound.
So is a new session past ``max_sessions``, and a new runner when ``max_servers`` run and none
can be evicted.  Steps of one session run in the order they arrived.

**Eviction.**  A new runner needs room: under ``max_servers`` and ``memory_budget_mb`` (the RSS
of the workers and their servers, measured every ``stats_interval``) the least recently used
runner with no pending step is stopped, preferring runners without sessions.  The sessions of
an evicted runner are rebuilt, by replay, at their next step.

**Recovery.**  The router keeps every session's steps and records.  When a runner cannot be
trusted (its server died, was restarted under a step or let a step time out; its worker
process or Ray actor is gone), it is dropped and each of its sessions is re-opened on a live
runner of its base (started if needed) and its steps replayed there; the replayed records must
be byte-identical to the stored ones (else the session is marked broken: E/REPLAY_MISMATCH).
The step that was running is then run again: the client sees only a slower answer.  A step
that fails three times in a row this way is answered with the last error (E/LS_CRASH, 503) and
is not part of the session.  A step that runs past ``step_timeout`` is answered E/LS_TIMEOUT
(504), is not recorded, and its runner is replaced.

**Expiry.**  A session without a pending step and idle for ``session_ttl`` is closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import secrets
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from ..bundles.canonical import canonical_bytes
from ..errors import BadInput, LanserError, LsCrash, LsTimeout, NotFound, ReplayMismatch, RequestCancelled
from ..rewards.records import aggregate
from ..rewards.runner import RewardOptions
from .bases import remove_tree
from .config import ServiceConfig
from .requests import BaseSpec, error_from_json, options_json, parse_base, parse_options, parse_step
from .transport import ProcessWorker, WorkerHandle, WorkerLost
from .worker import rss_bytes

MAX_ATTEMPTS = 3
SESSION_KEYS = ("repo", "base", "options")
SCORE_KEYS = ("repo", "base", "options", "steps")


class Busy(RequestCancelled):
    """Refused for load, not for what was asked: HTTP 429, retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1, reason: str = "busy") -> None:
        super().__init__(message, details={"reason": reason, "retryAfter": retry_after})
        self.retry_after = retry_after


@dataclass(eq=False)
class Base:
    spec: BaseSpec
    runners: list["RunnerSlot"] = field(default_factory=list)
    sessions: int = 0
    scaling: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # choosing or starting its runner


@dataclass(eq=False)
class RunnerSlot:
    id: str
    base: Base
    worker: WorkerHandle
    ready: asyncio.Future[None]
    state: str = "starting"  # starting | ready | dead
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sessions: set[str] = field(default_factory=set)
    pending: int = 0
    steps: int = 0
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    server_pid: int | None = None
    server_rss: int = 0


@dataclass(eq=False)
class Session:
    id: str
    base: Base
    options: RewardOptions
    runner: RunnerSlot | None = None
    placed: bool = False  # open on ``runner`` with every step replayed
    steps: list[bytes] = field(default_factory=list)  # each step as JSON, zlib-packed when large (replay)
    records: list[str] = field(default_factory=list)  # canonical JSON, as the worker made it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: int = 0
    last_used: float = field(default_factory=time.monotonic)
    broken: str | None = None


def pack_step(step: dict[str, Any]) -> bytes:
    """A step as the router keeps it for replay: JSON, deflated when large (a ``write`` carries a
    whole file), so a session's memory is about what its edits add, not its files' size."""
    data = orjson.dumps(step)
    return b"z" + zlib.compress(data, 1) if len(data) > 2048 else b"j" + data


def unpack_step(data: bytes) -> dict[str, Any]:
    step: dict[str, Any] = orjson.loads(zlib.decompress(data[1:]) if data[:1] == b"z" else data[1:])
    return step


def _unknown_keys(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r}; use {', '.join(allowed)}", details={"field": unknown[0]})


class Pool:
    """Everything behind the HTTP routes (see the module docstring)."""

    def __init__(self, config: ServiceConfig,
                 make_worker: Callable[[str, dict[str, Any], Callable[[WorkerHandle], Any]], WorkerHandle]
                 | None = None) -> None:
        self.config = config
        self.make_worker = make_worker or (lambda wid, cfg, lost: ProcessWorker(wid, cfg, lost))
        self.bases: dict[str, Base] = {}
        self.runners: dict[str, RunnerSlot] = {}
        self.sessions: dict[str, Session] = {}
        self.workers: list[WorkerHandle] = []
        self._worker_ids = itertools.count(1)
        self._runner_ids = itertools.count(1)
        self._spawn_lock = asyncio.Lock()
        self._runner_lock = asyncio.Lock()
        self._own_cache = config.cache_dir is None
        self.cache_dir = config.cache_dir or tempfile.mkdtemp(prefix="lanser-bases-")
        self.total_pending = 0
        self.counters: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.evictions: collections.Counter[str] = collections.Counter()
        self.on_step: Callable[[float], Any] | None = None  # told each step's latency (metrics)
        self.step_seconds = 0.5  # moving average of a step's run time (Retry-After estimates)
        self._per_second: collections.deque[list[float]] = collections.deque(maxlen=61)
        self.expired_ids: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.worker_rss: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self.closed = False
        self.ray_address: str | None = None  # the Ray cluster's GCS address (--ray), for /v1/pool

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._maintenance = asyncio.create_task(self._maintain())

    async def close(self) -> None:
        self.closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(BaseException):
                await self._maintenance
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        self.workers.clear()
        if self._own_cache:
            remove_tree(self.cache_dir)

    def _background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def worker_config(self) -> dict[str, Any]:
        c = self.config
        return {"cacheDir": self.cache_dir, "python": c.python, "server": c.server,
                "timeout": c.timeout if c.timeout is not None else c.step_timeout}

    # -- sessions ------------------------------------------------------------------------------
    async def open_session(self, body: Any) -> dict[str, Any]:
        sess = await self._new_session(body, SESSION_KEYS)
        return self.describe(sess)

    async def _new_session(self, body: Any, keys: tuple[str, ...]) -> Session:
        if not isinstance(body, dict):
            raise BadInput("the request body must be a JSON object")
        _unknown_keys(body, keys)
        spec = await asyncio.get_running_loop().run_in_executor(None, parse_base, body)
        options = parse_options(body.get("options"))
        if len(self.sessions) >= self.config.max_sessions:
            self.rejected["sessions"] += 1
            raise Busy(f"the service holds its maximum of {self.config.max_sessions} sessions; close some",
                       self._retry_after(1), "max-sessions")
        base = self.bases.get(spec.key)
        if base is None:
            base = self.bases[spec.key] = Base(spec)
        sess = Session("s-" + secrets.token_hex(8), base, options)
        self.sessions[sess.id] = sess
        base.sessions += 1
        try:
            async with sess.lock:
                await self._place(sess)
        except BaseException:
            self._forget(sess)
            raise
        return sess

    def session(self, sid: str) -> Session:
        sess = self.sessions.get(sid)
        if sess is None:
            why = self.expired_ids.get(sid)
            raise NotFound(f"no session {sid!r}" + (f" ({why})" if why else ""),
                           details={"session": sid, **({"reason": "expired"} if why else {})})
        return sess

    def describe(self, sess: Session) -> dict[str, Any]:
        return {"session": sess.id, "base": sess.base.spec.label, "options": options_json(sess.options),
                "steps": len(sess.steps), "runner": sess.runner.id if sess.runner is not None else None}

    def records_body(self, sid: str) -> bytes:
        """``GET /v1/sessions/{id}``: canonical JSON whose ``records`` are the stored bytes."""
        sess = self.session(sid)
        head = canonical_bytes({"base": sess.base.spec.label, "options": options_json(sess.options)})[:-1]
        tail = canonical_bytes({"runner": sess.runner.id if sess.runner is not None else None,
                                "session": sess.id, "steps": len(sess.steps)})[1:]
        return head + b',"records":[' + ",".join(sess.records).encode() + b"]," + tail

    async def close_session(self, sid: str) -> dict[str, Any]:
        sess = self.session(sid)
        async with sess.lock:
            self._forget(sess)
        return self._final(sess)

    def _final(self, sess: Session) -> dict[str, Any]:
        mode = sess.options.aggregate or "sum"
        final = aggregate([orjson.loads(r) for r in sess.records], mode) if sess.records else []
        return {"session": sess.id, "aggregate": mode, "steps": len(final),
                "return": final[0]["return"] if final else 0.0, "records": final}

    def _forget(self, sess: Session) -> None:
        if self.sessions.pop(sess.id, None) is None:
            return
        sess.base.sessions -= 1
        slot = sess.runner
        if slot is not None:
            slot.sessions.discard(sess.id)
            if slot.state != "dead" and sess.placed:
                self._background(self._quiet_call(slot.worker, "close", {"runner": slot.id, "session": sess.id}))
        self._drop_base_if_unused(sess.base)

    def _drop_base_if_unused(self, base: Base) -> None:
        if base.sessions <= 0 and not base.runners and self.bases.get(base.spec.key) is base:
            del self.bases[base.spec.key]

    async def _quiet_call(self, worker: WorkerHandle, method: str, params: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await worker.call(method, params, timeout=30)

    # -- steps ---------------------------------------------------------------------------------
    async def step(self, sid: str, body: Any, *, lenient: bool = False) -> str:
        """One step of a session: its record (canonical JSON text).  ``lenient``: a step
        object that is not a valid step is taken and gets an error record, as a bad line of
        ``lanser reward`` does (OpenRLHF's ``/get_reward`` scores a response without a
        usable action so), instead of being refused."""
        arrived = time.monotonic()
        sess = self.session(sid)
        raw = self._valid_step(body, lenient)
        if sess.broken:
            raise ReplayMismatch(sess.broken)
        if len(sess.steps) + sess.pending >= self.config.max_steps:
            raise BadInput(f"session {sid} holds its maximum of {self.config.max_steps} steps",
                           details={"reason": "max-steps"})
        slot = sess.runner if sess.runner is not None and sess.runner.state != "dead" else None
        self._admit(slot)
        sess.pending += 1
        self.total_pending += 1
        if slot is not None:
            slot.pending += 1
            self._maybe_scale(slot)
        try:
            async with sess.lock:
                record = await self._run_step(sess, raw)
        finally:
            sess.pending -= 1
            self.total_pending -= 1
            if slot is not None:
                slot.pending -= 1
            sess.last_used = time.monotonic()
        latency = time.monotonic() - arrived
        self.counters["steps"] += 1
        self._tick()
        if self.on_step is not None:
            self.on_step(latency)
        return record

    @staticmethod
    def _valid_step(body: Any, lenient: bool) -> dict[str, Any]:
        try:
            return parse_step(body).raw
        except BadInput:
            if lenient and isinstance(body, dict):
                return body
            raise

    def _admit(self, slot: RunnerSlot | None) -> None:
        c = self.config
        if slot is not None and slot.pending >= c.queue_size:
            self.rejected["queue"] += 1
            raise Busy(f"the queue of base {slot.base.spec.label} is full ({c.queue_size} pending steps)",
                       self._retry_after(slot.pending), "busy")
        if self.total_pending >= c.queue_size * c.max_servers:
            self.rejected["queue"] += 1
            raise Busy(f"the service is full ({self.total_pending} pending steps)",
                       self._retry_after(self.total_pending / max(1, len(self.runners))), "busy")

    def _retry_after(self, pending: float) -> int:
        return int(min(60, max(1, math.ceil(self.step_seconds * pending))))

    async def _run_step(self, sess: Session, raw: dict[str, Any]) -> str:
        last: LanserError | None = None
        for _ in range(MAX_ATTEMPTS):
            if sess.broken:
                raise ReplayMismatch(sess.broken)
            slot = await self._place(sess)
            async with slot.lock:
                if slot.state == "dead" or not sess.placed or sess.runner is not slot:
                    continue
                slot.last_used = t0 = time.monotonic()
                try:
                    env = await slot.worker.call("step", {"runner": slot.id, "session": sess.id, "step": raw},
                                                 timeout=self.config.step_timeout)
                except asyncio.TimeoutError:
                    self.counters["step_timeouts"] += 1
                    self._fail_runner(slot, "step-timeout")
                    raise LsTimeout(f"the step ran longer than {self.config.step_timeout:g} s (--step-timeout); "
                                    f"it was not recorded and its server was replaced",
                                    details={"reason": "step-timeout"}) from None
                except WorkerLost as exc:
                    last = LsCrash(str(exc))
                    continue
                ran = time.monotonic() - t0
            if env.get("ok"):
                record: str = env["result"]["record"]
                sess.steps.append(pack_step(raw))
                sess.records.append(record)
                slot.steps += 1
                self.step_seconds = 0.9 * self.step_seconds + 0.1 * ran
                return record
            last = error_from_json(env.get("error") or {})
            if env.get("kind") == "lanser":
                raise last
            self.counters["runner_failures"] += 1
            self._fail_runner(slot, "step-failed")
        raise last or LsCrash("the step could not be run")

    # -- placement -----------------------------------------------------------------------------
    async def _place(self, sess: Session) -> RunnerSlot:
        """``sess`` open on a live runner with all its steps replayed (the caller holds sess.lock)."""
        last: LanserError | None = None
        for _ in range(MAX_ATTEMPTS):
            slot = sess.runner
            if slot is None or slot.state == "dead":
                async with sess.base.lock:  # sessions opened together share the runner one of them starts
                    slot = self._choose(sess.base) or await self._new_runner(sess.base)
                self._attach(sess, slot)
            await asyncio.shield(slot.ready)  # a runner that cannot start: its error, to the client
            if sess.placed and slot.state != "dead":
                return slot
            recovering = bool(sess.steps)
            async with slot.lock:
                if slot.state == "dead":
                    continue
                params = {"runner": slot.id, "session": sess.id, "options": options_json(sess.options),
                          "steps": [unpack_step(x) for x in sess.steps]}
                try:
                    env = await slot.worker.call("replay", params,
                                                 timeout=self.config.step_timeout * (len(sess.steps) + 1))
                except asyncio.TimeoutError:
                    self._fail_runner(slot, "replay-timeout")
                    last = LsTimeout("replaying the session took too long")
                    continue
                except WorkerLost as exc:
                    last = LsCrash(str(exc))
                    continue
            if not env.get("ok"):
                last = error_from_json(env.get("error") or {})
                if env.get("kind") == "lanser":
                    raise last
                self._fail_runner(slot, "replay-failed")
                continue
            got = env["result"]["records"]
            if got != sess.records:
                k = next(i for i, (a, b) in enumerate(zip(got + [""], sess.records + [""])) if a != b)
                sess.broken = (f"session {sess.id}: replaying its steps on a new server gave a different record "
                               f"at step {k + 1}; the session cannot go on (its records so far stand)")
                self.counters["replay_mismatches"] += 1
                raise ReplayMismatch(sess.broken)
            sess.placed = True
            if recovering:
                self.counters["recoveries"] += 1
                self.counters["replayed_steps"] += len(sess.steps)
            return slot
        raise last or LsCrash(f"session {sess.id} could not be placed on a server")

    def _choose(self, base: Base) -> RunnerSlot | None:
        live = [r for r in base.runners if r.state != "dead"]
        return min(live, key=lambda r: (len(r.sessions), r.pending, r.created)) if live else None

    def _attach(self, sess: Session, slot: RunnerSlot) -> None:
        if sess.runner is not None and sess.runner is not slot:
            sess.runner.sessions.discard(sess.id)
        sess.runner = slot
        slot.sessions.add(sess.id)
        sess.placed = False

    def _maybe_scale(self, slot: RunnerSlot) -> None:
        base = slot.base
        if slot.pending < self.config.scale_queue or base.scaling or self.closed:
            return
        if any(r.state == "starting" for r in base.runners):
            return
        # An extra server only helps the sessions opened after it; it never evicts another
        # (evicting an idle extra server of another base, which then scaled out again in turn,
        # restarted servers without end under a long queue on every base).
        if len(self.runners) >= self.config.max_servers or self._over_budget():
            return
        base.scaling = True

        async def go() -> None:
            try:
                async with base.lock:
                    new = await self._new_runner(base, evict=False)
                self.counters["scale_outs"] += 1
                with contextlib.suppress(BaseException):
                    await asyncio.shield(new.ready)
            except LanserError:
                pass
            finally:
                base.scaling = False

        self._background(go())

    # -- runners ---------------------------------------------------------------------------------
    def _memory_estimate(self) -> int:
        return sum(self.worker_rss.get(w.id, 0) for w in self.workers if w.alive) + \
            sum(r.server_rss for r in self.runners.values())

    def _over_budget(self) -> bool:
        mb = self.config.memory_budget_mb
        return mb is not None and self._memory_estimate() >= mb * 1024 * 1024

    def _victim(self) -> RunnerSlot | None:
        """The least recently used runner that may be stopped (no pending step, not starting);
        runners without sessions first."""
        cands = [r for r in self.runners.values() if r.state == "ready" and r.pending == 0 and not r.lock.locked()]
        return min(cands, key=lambda r: (bool(r.sessions), r.last_used)) if cands else None

    async def _new_runner(self, base: Base, *, evict: bool = True) -> RunnerSlot:
        """A new runner for ``base``; at the bounds, the least recently used idle runner is
        evicted first (``evict=False``: Busy instead)."""
        async with self._runner_lock:  # one at a time: the bounds hold however many arrive together
            return await self._new_runner_locked(base, evict=evict)

    async def _new_runner_locked(self, base: Base, *, evict: bool) -> RunnerSlot:
        while len(self.runners) >= self.config.max_servers or self._over_budget():
            reason = "max-servers" if len(self.runners) >= self.config.max_servers else "memory-budget"
            victim = self._victim() if evict else None
            if victim is None:
                self.rejected["servers"] += 1
                raise Busy(f"every server is busy ({len(self.runners)} running, {reason}); retry later",
                           self._retry_after(2), reason)
            self.evictions[reason] += 1
            self._fail_runner(victim, f"evicted ({reason})")
        worker = await self._worker_for_runner()
        loop = asyncio.get_running_loop()
        slot = RunnerSlot(f"r{next(self._runner_ids)}", base, worker, loop.create_future())
        slot.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.runners[slot.id] = slot
        base.runners.append(slot)
        self._background(self._start_runner(slot))
        return slot

    async def _start_runner(self, slot: RunnerSlot) -> None:
        error: LanserError
        try:
            env = await slot.worker.call("start_runner", {"runner": slot.id, "base": slot.base.spec.to_json()},
                                         timeout=self.config.start_timeout)
        except WorkerLost as exc:
            error = LsCrash(f"the worker was lost while the server started: {exc}")
        except asyncio.TimeoutError:
            error = LsTimeout(f"the server did not start within {self.config.start_timeout:g} s")
            self._background(self._quiet_call(slot.worker, "drop_runner", {"runner": slot.id}))
        else:
            if env.get("ok") and slot.state == "starting":
                slot.state = "ready"
                slot.server_pid = env["result"].get("serverPid")
                slot.last_used = time.monotonic()
                self.counters["server_starts"] += 1
                if not slot.ready.done():
                    slot.ready.set_result(None)
                return
            if env.get("ok"):  # killed while starting (evicted, worker lost)
                self._background(self._quiet_call(slot.worker, "drop_runner", {"runner": slot.id}))
                return
            error = error_from_json(env.get("error") or {})
        self._kill_slot(slot, error)

    def _kill_slot(self, slot: RunnerSlot, error: LanserError) -> None:
        if slot.state == "dead":
            return
        slot.state = "dead"
        self.runners.pop(slot.id, None)
        with contextlib.suppress(ValueError):
            slot.base.runners.remove(slot)
        if not slot.ready.done():
            slot.ready.set_exception(error)
        for sid in slot.sessions:
            sess = self.sessions.get(sid)
            if sess is not None and sess.runner is slot:
                sess.placed = False
        self._drop_base_if_unused(slot.base)

    def _fail_runner(self, slot: RunnerSlot, reason: str) -> None:
        """Stop trusting ``slot``: forget it here, stop it on its worker (a worker that does not
        answer within 15 s is killed: it is wedged)."""
        if slot.state == "dead":
            return
        self.counters[f"runners_dropped_{reason.split(' ')[0]}"] += 1
        self._kill_slot(slot, LsCrash(f"the server was stopped: {reason}"))
        worker = slot.worker

        async def drop() -> None:
            if not worker.alive:
                return
            try:
                await worker.call("drop_runner", {"runner": slot.id}, timeout=15)
            except asyncio.TimeoutError:
                worker.kill()
            except Exception:
                pass

        self._background(drop())

    # -- workers -----------------------------------------------------------------------------------
    async def _worker_for_runner(self) -> WorkerHandle:
        async with self._spawn_lock:
            live = [w for w in self.workers if w.alive]
            load = {w.id: sum(1 for r in self.runners.values() if r.worker is w) for w in live}
            idle = [w for w in live if load[w.id] == 0]
            if idle:
                return idle[0]
            if len(live) < self.config.worker_count:
                worker = self.make_worker(f"w{next(self._worker_ids)}", self.worker_config, self._worker_lost)
                try:
                    await worker.start()
                except WorkerLost as exc:
                    raise LsCrash(f"a worker could not be started: {exc}") from None
                except asyncio.TimeoutError:
                    worker.kill()
                    raise LsCrash("a worker did not start in time") from None
                self.workers.append(worker)
                self.counters["worker_starts"] += 1
                return worker
            return min(live, key=lambda w: load[w.id])

    def _worker_lost(self, worker: WorkerHandle) -> None:
        if self.closed:
            return
        self.counters["worker_losses"] += 1
        with contextlib.suppress(ValueError):
            self.workers.remove(worker)
        self.worker_rss.pop(worker.id, None)
        for slot in [r for r in self.runners.values() if r.worker is worker]:
            self._kill_slot(slot, LsCrash(f"worker {worker.id} (pid {worker.pid}) was lost"))

    # -- scoring a whole trajectory ------------------------------------------------------------------
    async def score(self, body: Any, *, lenient: bool = False) -> dict[str, Any]:
        """A whole trajectory in a session of its own (``lenient``: as in :meth:`step`)."""
        if not isinstance(body, dict):
            raise BadInput("the request body must be a JSON object")
        _unknown_keys(body, SCORE_KEYS)
        steps = body.get("steps")
        if not isinstance(steps, list):
            raise BadInput("'steps' must be a list of steps", details={"field": "steps"})
        if len(steps) > self.config.max_steps:
            raise BadInput(f"at most {self.config.max_steps} steps", details={"field": "steps"})
        for i, s in enumerate(steps, start=1):
            try:
                self._valid_step(s, lenient)
            except BadInput as exc:
                raise BadInput(f"step {i}: {exc.message}", details={**exc.details, "index": i}) from None
        self._admit(None)
        sess = await self._new_session({k: v for k, v in body.items() if k != "steps"}, SESSION_KEYS)
        try:
            for s in steps:
                await self.step(sess.id, s, lenient=lenient)
            records = [orjson.loads(r) for r in sess.records]
        finally:
            self._forget(sess)
        mode = sess.options.aggregate
        final = aggregate(records, mode) if mode else records
        totals = aggregate(records, mode or "sum") if records else []
        return {"aggregate": mode, "steps": len(records), "return": totals[0]["return"] if totals else 0.0,
                "records": final}

    # -- upkeep --------------------------------------------------------------------------------------
    async def _maintain(self) -> None:
        interval = min(self.config.stats_interval, max(0.05, self.config.session_ttl / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                self.expire()
                await self.poll_workers()
                self._enforce_budget()
            except Exception as exc:  # upkeep must go on
                print(f"lanser serve: upkeep failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def expire(self) -> None:
        now = time.monotonic()
        for sess in list(self.sessions.values()):
            if sess.pending == 0 and not sess.lock.locked() and now - sess.last_used > self.config.session_ttl:
                self._forget(sess)
                self.counters["expired_sessions"] += 1
                self.expired_ids[sess.id] = f"closed after {self.config.session_ttl:g} s idle"
                while len(self.expired_ids) > 4096:
                    self.expired_ids.popitem(last=False)

    async def poll_workers(self) -> None:
        live = [w for w in self.workers if w.alive]

        async def one(w: WorkerHandle) -> None:
            try:
                env = await w.call("stats", {}, timeout=10)
            except (WorkerLost, asyncio.TimeoutError):
                return
            if not env.get("ok"):
                return
            stats = env["result"]
            self.worker_rss[w.id] = int(stats.get("rss", 0))
            reported = stats.get("runners", {})
            for slot in [r for r in self.runners.values() if r.worker is w and r.state == "ready"]:
                info = reported.get(slot.id)
                if info is None or slot.lock.locked():
                    continue
                slot.server_pid, slot.server_rss = info.get("serverPid"), int(info.get("serverRss", 0))
                if not info.get("alive", True):
                    self.counters["server_deaths"] += 1
                    self._fail_runner(slot, "server-died")

        await asyncio.gather(*(one(w) for w in live))

    def _enforce_budget(self) -> None:
        while self._over_budget() and len(self.runners) > 0:
            victim = self._victim()
            if victim is None:
                return
            self.evictions["memory-budget"] += 1
            self._fail_runner(victim, "evicted (memory-budget)")

    def _tick(self) -> None:
        sec = math.floor(time.monotonic())
        if self._per_second and self._per_second[-1][0] == sec:
            self._per_second[-1][1] += 1
        else:
            self._per_second.append([sec, 1])

    def steps_per_second(self, window: int = 10) -> float:
        now = math.floor(time.monotonic())
        n = sum(c for s, c in self._per_second if now - window <= s < now)
        return n / window

    # -- reports -----------------------------------------------------------------------------------
    def rss(self) -> dict[str, int]:
        return {"router": rss_bytes(_pid()),
                "workers": sum(self.worker_rss.get(w.id, 0) for w in self.workers if w.alive),
                "servers": sum(r.server_rss for r in self.runners.values())}

    def status(self) -> dict[str, Any]:
        """``GET /v1/pool``: workers, runners (with their server's pid) and bases."""
        return {
            "mode": "ray" if self.config.ray is not None else "local",
            "ray": self.ray_address,
            "workers": [{"id": w.id, "kind": w.kind, "pid": w.pid, "alive": w.alive,
                         "rss": self.worker_rss.get(w.id, 0),
                         "runners": sorted(r.id for r in self.runners.values() if r.worker is w)}
                        for w in self.workers],
            "runners": [{"id": r.id, "base": r.base.spec.label, "state": r.state, "worker": r.worker.id,
                         "serverPid": r.server_pid, "serverRss": r.server_rss, "sessions": sorted(r.sessions),
                         "pending": r.pending, "steps": r.steps} for r in self.runners.values()],
            "bases": [{"label": b.spec.label, "kind": b.spec.kind, "sessions": b.sessions,
                       "runners": [r.id for r in b.runners]} for b in self.bases.values()],
            "sessions": len(self.sessions),
            "pending": self.total_pending,
            "counters": dict(sorted(self.counters.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "evictions": dict(sorted(self.evictions.items())),
            "rss": self.rss(),
        }


def _pid() -> int:
    import os

    return os.getpid()


__all__ = ["Busy", "Pool", "RunnerSlot", "Session"]
